package connector

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Magic bytes at the start of compressed streams.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// CompressionModes are the values the compression option takes.
var CompressionModes = []string{"auto", "none", "gzip", "zstd"}

// Decompress returns the decoded form of r. mode "auto" (or "") detects gzip and zstd by
// their magic bytes and passes anything else through; "none", "gzip" and "zstd" force the
// choice. Closing the result releases the decoder, not r.
func Decompress(r io.Reader, mode string) (io.ReadCloser, error) {
	switch strings.ToLower(mode) {
	case "", "auto":
		br := bufio.NewReaderSize(r, 64<<10)
		head, err := br.Peek(4)
		if err != nil && err != io.EOF {
			return nil, err
		}
		switch {
		case bytes.HasPrefix(head, gzipMagic):
			return newGzip(br)
		case bytes.HasPrefix(head, zstdMagic):
			return newZstd(br)
		}
		return io.NopCloser(br), nil
	case "none":
		return io.NopCloser(r), nil
	case "gzip":
		return newGzip(r)
	case "zstd":
		return newZstd(r)
	}
	return nil, fmt.Errorf("compression=%q is not known; use one of %s", mode, strings.Join(CompressionModes, ", "))
}

func newGzip(r io.Reader) (io.ReadCloser, error) {
	z, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a gzip stream: %w", err)
	}
	return z, nil
}

// zstdReader adapts the decoder's Close, which returns nothing.
type zstdReader struct{ *zstd.Decoder }

func (z zstdReader) Close() error {
	z.Decoder.Close()
	return nil
}

func newZstd(r io.Reader) (io.ReadCloser, error) {
	// One goroutine: the CSV parser is the bottleneck, and the machine's cores are shared.
	d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
	if err != nil {
		return nil, fmt.Errorf("not a zstd stream: %w", err)
	}
	return zstdReader{d}, nil
}
