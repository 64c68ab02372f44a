package connector

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// This file splits CSV text into records and fields (RFC 4180 plus the usual variations:
// any delimiter, an escape character other than the quote, CRLF or LF or CR line ends).
// Fields are not copied: a span points into the scanner's buffer, or into the chunk's arena
// for a quoted field whose escapes had to be removed. Spans stay valid until the next fill,
// so the reader converts each chunk before reading more input.

// span locates one field. off is an offset into the scanner's buffer, or into the chunk's
// arena when spanArena is set; the low 30 bits of n are the length.
type span struct{ off, n uint32 }

const (
	spanQuoted = 1 << 31 // the field was enclosed in quotes
	spanArena  = 1 << 30 // the field's bytes are in the chunk's arena
	spanLen    = 1<<30 - 1

	// maxRecordBytes bounds one record; a longer one is almost always a stray quote.
	maxRecordBytes = 256 << 20
	csvReadSize    = 1 << 20
)

func (s span) quoted() bool { return s.n&spanQuoted != 0 }

// chunk is a run of parsed records: field j of record r is spans[r*ncols+j].
type chunk struct {
	spans []span
	lines []int64 // physical line (1-based) each record starts on
	arena []byte
	ascii bool // the records' text is all ASCII, so no field needs a UTF-8 check
}

func (c *chunk) records() int { return len(c.lines) }

func (c *chunk) reset() {
	c.spans, c.lines, c.arena, c.ascii = c.spans[:0], c.lines[:0], c.arena[:0], false
}

// isASCII reports whether b holds only ASCII bytes, eight at a time.
func isASCII(b []byte) bool {
	var acc uint64
	for len(b) >= 8 {
		acc |= binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	for _, c := range b {
		acc |= uint64(c)
	}
	return acc&0x8080808080808080 == 0
}

// bytes returns the field's bytes, which alias buf or the arena.
func (c *chunk) bytes(buf []byte, s span) []byte {
	n := s.n & spanLen
	if s.n&spanArena != 0 {
		return c.arena[s.off : s.off+n]
	}
	return buf[s.off : s.off+n]
}

// csvDialect is how a file is written.
type csvDialect struct {
	delim    []byte // one or more bytes
	quote    byte
	hasQuote bool
	esc      byte // equal to quote for "" doubling
}

// csvScanner reads records out of one file.
type csvScanner struct {
	d       csvDialect
	plain   [256]bool // bytes that do not end an unquoted field
	r       io.Reader
	name    string // file, for messages
	buf     []byte
	pos     int
	end     int
	eof     bool
	line    int64  // physical line the next record starts on
	ncols   int    // fields per record; 0 until the first record sets it
	ncolsAt string // what set ncols, for messages: "a.csv line 1"
	maxRec  int    // maxRecordBytes, smaller in tests
}

var errIncomplete = errors.New("incomplete record")

func newCSVScanner(d csvDialect, buf []byte) *csvScanner {
	s := &csvScanner{d: d, buf: buf, maxRec: maxRecordBytes}
	for i := range s.plain {
		s.plain[i] = true
	}
	s.plain[d.delim[0]], s.plain['\n'], s.plain['\r'] = false, false, false
	return s
}

// reset points the scanner at a new file, keeping its buffer and field count.
func (s *csvScanner) reset(r io.Reader, name string) {
	s.r, s.name, s.pos, s.end, s.eof, s.line = r, name, 0, 0, false, 1
}

// fill reads more input after buf[pos:end], moving that to the front and growing the
// buffer as needed. Spans into the buffer are invalid afterwards.
func (s *csvScanner) fill() error {
	if s.eof {
		return nil
	}
	if s.pos > 0 {
		copy(s.buf, s.buf[s.pos:s.end])
		s.end -= s.pos
		s.pos = 0
	}
	if len(s.buf)-s.end < csvReadSize {
		if s.end > s.maxRec {
			return fmt.Errorf("%s line %d: a row longer than %d MB; check that quotes are balanced and the quote option is right", s.name, s.line, s.maxRec>>20)
		}
		nb := make([]byte, max(2*len(s.buf), 2*csvReadSize))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	n, err := io.ReadAtLeast(s.r, s.buf[s.end:], 1)
	s.end += n
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		s.eof = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.name, err)
	}
	return nil
}

// done reports whether every record has been returned.
func (s *csvScanner) done() bool { return s.eof && s.pos >= s.end }

// start drops a UTF-8 byte order mark and the first skip lines.
func (s *csvScanner) start(skip int64) error {
	for s.end-s.pos < 3 && !s.eof {
		if err := s.fill(); err != nil {
			return err
		}
	}
	if bytes.HasPrefix(s.buf[s.pos:s.end], []byte("\xef\xbb\xbf")) {
		s.pos += 3
	}
	for ; skip > 0; skip-- {
		for {
			if i := bytes.IndexByte(s.buf[s.pos:s.end], '\n'); i >= 0 {
				s.pos += i + 1
				s.line++
				break
			}
			if s.eof {
				s.pos = s.end
				return nil
			}
			if err := s.fill(); err != nil {
				return err
			}
		}
	}
	return nil
}

// split parses records from the buffered input into ch until it holds max records or the
// buffer holds no complete record (then fill and split again), or the input ends.
func (s *csvScanner) split(ch *chunk, max int) error {
	from := s.pos
	defer func() { ch.ascii = isASCII(s.buf[from:s.pos]) }()
	for ch.records() < max && s.pos < s.end {
		n, err := s.record(ch)
		if err != nil {
			if err == errIncomplete {
				return nil
			}
			return err
		}
		s.pos = n
	}
	return nil
}

// sample parses up to n records from the start of the input without consuming them,
// reading more input while it holds fewer and less than limit bytes are buffered.
func (s *csvScanner) sample(ch *chunk, n, limit int) error {
	for {
		ch.reset()
		pos, line, ncols, at := s.pos, s.line, s.ncols, s.ncolsAt
		err := s.split(ch, n)
		full := ch.records() >= n || ch.records() > 0 && s.end-pos >= limit
		s.pos, s.line, s.ncols, s.ncolsAt = pos, line, ncols, at
		if err != nil || full || s.eof {
			return err
		}
		if err := s.fill(); err != nil {
			return err
		}
	}
}

// one parses the next record into ch (reset first), reading input as needed; false at the
// end of the input.
func (s *csvScanner) one(ch *chunk) (bool, error) {
	for {
		ch.reset()
		if err := s.split(ch, 1); err != nil {
			return false, err
		}
		if ch.records() == 1 {
			return true, nil
		}
		if s.done() {
			return false, nil
		}
		if err := s.fill(); err != nil {
			return false, err
		}
	}
}

// record parses the record at s.pos into ch and returns the offset after it. It returns
// errIncomplete when the buffer ends inside the record and more input may follow. Blank
// lines yield no record.
func (s *csvScanner) record(ch *chunk) (int, error) {
	data := s.buf[:s.end]
	atEOF := s.eof
	p := s.pos
	d := &s.d
	mark, amark := len(ch.spans), len(ch.arena)
	var nl int64 // newlines inside quoted fields
	incomplete := func() (int, error) {
		ch.spans, ch.arena = ch.spans[:mark], ch.arena[:amark]
		return 0, errIncomplete
	}
	for {
		if p < len(data) && d.hasQuote && data[p] == d.quote {
			q := p + 1
			i := q
			escaped := false
			for {
				j := s.quoteOrEscape(data, i)
				if j < 0 {
					if !atEOF {
						return incomplete()
					}
					return 0, fmt.Errorf("%s line %d: a quoted field is not closed by the end of the file; check that quotes are balanced, or set quote='' if the file does not quote fields", s.name, s.line)
				}
				if data[j] == d.esc && (d.esc != d.quote || j+1 < len(data) && data[j+1] == d.quote) {
					if j+1 >= len(data) {
						if !atEOF {
							return incomplete()
						}
						return 0, fmt.Errorf("%s line %d: a quoted field is not closed by the end of the file", s.name, s.line)
					}
					escaped = true
					i = j + 2
					continue
				}
				if j+1 == len(data) && !atEOF && d.esc == d.quote {
					return incomplete() // a doubled quote may follow
				}
				i = j
				break
			}
			content := data[q:i]
			nl += int64(bytes.Count(content, []byte{'\n'}))
			if escaped {
				off := len(ch.arena)
				ch.arena = s.unescape(ch.arena, content)
				ch.spans = append(ch.spans, span{uint32(off), uint32(len(ch.arena)-off) | spanQuoted | spanArena})
			} else {
				ch.spans = append(ch.spans, span{uint32(q), uint32(len(content)) | spanQuoted})
			}
			p = i + 1
			if p < len(data) && data[p] != '\n' && data[p] != '\r' && !bytes.HasPrefix(data[p:], d.delim) {
				if bytes.HasPrefix(d.delim, data[p:]) && !atEOF {
					return incomplete()
				}
				return 0, fmt.Errorf("%s line %d: unexpected %q after a closing quote; a quoted field must end at a delimiter or line end (a quote inside a field is written as %c%c)", s.name, s.line+nl, data[p], d.quote, d.quote)
			}
		} else {
			start := p
			for {
				p = s.plainRun(data, p)
				if p < len(data) && data[p] == d.delim[0] && len(d.delim) > 1 && !bytes.HasPrefix(data[p:], d.delim) {
					if bytes.HasPrefix(d.delim, data[p:]) && !atEOF {
						return incomplete()
					}
					p++ // the first byte of the delimiter alone is data
					continue
				}
				break
			}
			if p == start && len(ch.spans) == mark && p < len(data) && (data[p] == '\n' || data[p] == '\r') {
				// A blank line.
				n, ok := s.lineEnd(data, p, atEOF)
				if !ok {
					return incomplete()
				}
				s.line++
				s.pos = n
				p = n
				continue
			}
			if p == start && len(ch.spans) == mark && p == len(data) {
				if !atEOF {
					return incomplete()
				}
				return p, nil // blank last line
			}
			ch.spans = append(ch.spans, span{uint32(start), uint32(p - start)})
		}
		// What ends the field?
		if p == len(data) {
			if !atEOF {
				return incomplete()
			}
			return s.endRecord(ch, mark, p, nl)
		}
		if data[p] == '\n' || data[p] == '\r' {
			n, ok := s.lineEnd(data, p, atEOF)
			if !ok {
				return incomplete()
			}
			return s.endRecord(ch, mark, n, nl)
		}
		p += len(d.delim) // the delimiter
		if p == len(data) && !atEOF {
			return incomplete()
		}
		if p == len(data) {
			ch.spans = append(ch.spans, span{uint32(p), 0}) // empty last field
			return s.endRecord(ch, mark, p, nl)
		}
	}
}

// Masks for finding bytes eight at a time (SWAR): lo has 0x01 in every byte, hi 0x80.
const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// plainRun returns the end of the run of plain bytes at p: the first delimiter byte, CR
// or LF, or len(data).
func (s *csvScanner) plainRun(data []byte, p int) int {
	d, lf, cr := uint64(s.d.delim[0])*swarLo, uint64('\n')*swarLo, uint64('\r')*swarLo
	for p+8 <= len(data) {
		w := binary.LittleEndian.Uint64(data[p:])
		// A byte of w^x is zero where w holds x; (v-lo)&^v&hi flags the lowest such byte
		// exactly (bytes above it may be flagged falsely, which does not matter).
		x, y, z := w^d, w^lf, w^cr
		m := ((x - swarLo) &^ x) | ((y - swarLo) &^ y) | ((z - swarLo) &^ z)
		if m &= swarHi; m != 0 {
			return p + bits.TrailingZeros64(m)>>3
		}
		p += 8
	}
	for p < len(data) && s.plain[data[p]] {
		p++
	}
	return p
}

// lineEnd returns the offset after the line end at p (LF, CRLF or a lone CR).
func (s *csvScanner) lineEnd(data []byte, p int, atEOF bool) (int, bool) {
	if data[p] == '\n' {
		return p + 1, true
	}
	if p+1 == len(data) {
		return p + 1, atEOF
	}
	if data[p+1] == '\n' {
		return p + 2, true
	}
	return p + 1, true
}

func (s *csvScanner) endRecord(ch *chunk, mark, n int, nl int64) (int, error) {
	nf := len(ch.spans) - mark
	if s.ncols == 0 {
		s.ncols, s.ncolsAt = nf, fmt.Sprintf("%s line %d", s.name, s.line)
	} else if nf != s.ncols {
		ch.spans = ch.spans[:mark]
		return 0, fmt.Errorf("%s line %d: %d fields where %s has %d; every row needs the same number of fields (check the delimiter and the quoting)", s.name, s.line, nf, s.ncolsAt, s.ncols)
	}
	ch.lines = append(ch.lines, s.line)
	s.line += nl + 1
	return n, nil
}

// quoteOrEscape returns the index of the next quote or escape byte at or after i, or -1.
func (s *csvScanner) quoteOrEscape(data []byte, i int) int {
	if s.d.esc == s.d.quote {
		if j := bytes.IndexByte(data[i:], s.d.quote); j >= 0 {
			return i + j
		}
		return -1
	}
	for j := i; j < len(data); j++ {
		if data[j] == s.d.quote || data[j] == s.d.esc {
			return j
		}
	}
	return -1
}

// unescape appends content with its escapes removed: the escape byte makes the next byte
// literal ("" stands for " when the escape is the quote).
func (s *csvScanner) unescape(dst, content []byte) []byte {
	for i := 0; i < len(content); i++ {
		if content[i] == s.d.esc && i+1 < len(content) {
			i++
		}
		dst = append(dst, content[i])
	}
	return dst
}
