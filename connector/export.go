package connector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ExportOptions say how Export writes.
type ExportOptions struct {
	// Format is "parquet", "csv" or "json" (JSON lines).
	Format string
	// PartBytes bounds one output file; default 256 MiB. A result larger than one part is
	// written as a folder: url/part-00000.<ext>, url/part-00001.<ext>, … Each part is
	// built in memory before it is written.
	PartBytes int64
}

// ExportResult is what Export wrote.
type ExportResult struct {
	Rows, Bytes int64
	Files       []string // URLs written, in order
}

const defaultPartBytes = 256 << 20

// Export drains src into the object(s) url names, through res.Write (which confines
// file:// URLs to the import directories and writes S3). When the whole result fits in
// one part it is written as exactly url; an empty result is one file holding only the
// header (CSV) or the schema (Parquet).
//
// The text forms of values, shared by CSV and JSON lines:
//
//	numbers     shortest text that reads back exactly (1e21 and beyond, and below 1e-6,
//	            in exponent form); NaN, Infinity, -Infinity
//	decimals    exact, with all their scale digits (12.50)
//	dates       YYYY-MM-DD
//	timestamps  YYYY-MM-DD HH:MM:SS[.ffffff], trailing zeros of the fraction dropped and no
//	            zone, both for timestamp (UTC) and timestamp_ntz: what MySQL shows for a
//	            DATETIME and what DuckDB and MySQL's LOAD DATA read as one
//	binary      hexadecimal, upper case (MySQL's HEX(); UNHEX() gives the bytes back)
//	booleans    true / false
//	nested      JSON: structs and maps as objects (non-string map keys as their JSON
//	            text), arrays as arrays
//
// CSV follows RFC 4180 with a header row, except that records end in LF, as DuckDB and
// MySQL write them (readers take LF or CRLF): NULL is an empty unquoted field, an empty
// string is "", fields holding a comma, quote or line break are quoted with quotes
// doubled. JSON lines hold one object per row with the column names as keys: NULL is
// null, numbers and decimals are JSON numbers (non-finite floats are the strings "NaN",
// "Infinity", "-Infinity"), dates and timestamps are strings, and string columns marked as
// JSON documents (MetaJSON) are embedded as JSON rather than quoted.
//
// Parquet parts are zstd-compressed, with statistics, row groups of at most 1M rows or
// about 128 MiB, dictionaries for string columns, and JSON columns annotated with the
// Parquet JSON logical type; OpenParquet reads them back to the same columns. Parquet
// parts are cut between batches, text parts between rows.
func Export(ctx context.Context, res *Resolver, src Source, url string, opt ExportOptions) (ExportResult, error) {
	var result ExportResult
	if opt.PartBytes <= 0 {
		opt.PartBytes = defaultPartBytes
	}
	var enc partEncoder
	var err error
	switch strings.ToLower(opt.Format) {
	case "parquet":
		enc, err = newParquetEncoder(src, opt.PartBytes)
	case "csv":
		enc, err = newTextEncoder(src, false)
	case "json", "jsonl", "ndjson":
		enc, err = newTextEncoder(src, true)
	default:
		return result, fmt.Errorf("export: unknown format %q; use parquet, csv or json", opt.Format)
	}
	if err != nil {
		return result, fmt.Errorf("export to %s: %w", url, err)
	}
	ext := enc.extension()
	parts := 0
	write := func(last bool) error {
		data, err := enc.finish()
		if err != nil {
			return fmt.Errorf("export to %s: %w", url, err)
		}
		target := url
		if parts > 0 || !last {
			if parts == 0 {
				// Parts of an earlier, larger export of the same URL would otherwise be
				// read back with these by a glob over the folder.
				if err := res.Remove(ctx, strings.TrimSuffix(url, "/"), "part-*."+ext); err != nil {
					return fmt.Errorf("export: clearing old parts under %s: %w", url, err)
				}
			}
			target = fmt.Sprintf("%s/part-%05d.%s", strings.TrimSuffix(url, "/"), parts, ext)
		}
		written, err := res.Write(ctx, target, data)
		if err != nil {
			return fmt.Errorf("export: writing %s: %w", target, err)
		}
		parts++
		result.Files = append(result.Files, written)
		result.Bytes += int64(len(data))
		return nil
	}
	if err := enc.begin(); err != nil {
		return result, fmt.Errorf("export to %s: %w", url, err)
	}
	full := false
	for {
		rec, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return result, err
		}
		n := int(rec.NumRows())
		for from := 0; from < n; {
			// A part is written only once more rows are known to follow, so the last
			// part is never empty and a result of exactly one part keeps the plain URL.
			if full {
				if err := write(false); err != nil {
					rec.Release()
					return result, err
				}
				if err := enc.begin(); err != nil {
					rec.Release()
					return result, fmt.Errorf("export to %s: %w", url, err)
				}
			}
			next, err := enc.write(rec, from, opt.PartBytes)
			if err != nil {
				rec.Release()
				return result, fmt.Errorf("export to %s: %w", url, err)
			}
			result.Rows += int64(next - from)
			from = next
			full = enc.size() >= opt.PartBytes
		}
		rec.Release()
	}
	if err := write(true); err != nil {
		return result, err
	}
	return result, nil
}

// partEncoder builds one output file in memory.
type partEncoder interface {
	extension() string
	begin() error
	// write encodes rows of rec from row from on, at least one, stopping early (text
	// formats, between rows) once the part holds limit bytes; it returns the next row.
	write(rec arrow.RecordBatch, from int, limit int64) (int, error)
	size() int64
	finish() ([]byte, error)
}

// --- Parquet ---

type parquetEncoder struct {
	schema   *arrow.Schema // src's, with JSON columns as the arrow.json extension type
	json     []bool
	props    *parquet.WriterProperties
	buf      bytes.Buffer
	fw       *pqarrow.FileWriter
	rowGroup int64 // bytes after which a row group is closed
}

func newParquetEncoder(src Source, partBytes int64) (*parquetEncoder, error) {
	e := &parquetEncoder{rowGroup: 128 << 20}
	sch := src.Schema()
	fields := sch.Fields()
	props := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithStats(true),
		parquet.WithMaxRowGroupLength(1 << 20),
		parquet.WithDictionaryDefault(false),
		parquet.WithStoreDecimalAsInteger(true),
		parquet.WithCreatedBy("lakehoused version 0.1.0 (build arrow-go v18.8.0)"),
		// The part size is judged from the pages encoded so far, which lags by up to a
		// page per column: small parts get small pages.
		parquet.WithDataPageSize(min(1<<20, max(8<<10, partBytes/64))),
	}
	e.json = make([]bool, len(fields))
	for i, f := range src.Fields() {
		switch fields[i].Type.ID() {
		case arrow.STRING, arrow.BINARY:
			props = append(props, parquet.WithDictionaryFor(f.Name, true))
		}
		if f.Metadata[MetaJSON] == true && fields[i].Type.ID() == arrow.STRING {
			jt, err := extensions.NewJSONType(arrow.BinaryTypes.String)
			if err != nil {
				return nil, err
			}
			fields[i].Type = jt
			e.json[i] = true
		}
	}
	e.schema = arrow.NewSchema(fields, nil)
	e.props = parquet.NewWriterProperties(props...)
	return e, nil
}

func (e *parquetEncoder) extension() string { return "parquet" }

func (e *parquetEncoder) begin() error {
	e.buf = bytes.Buffer{}
	fw, err := pqarrow.NewFileWriter(e.schema, &e.buf, e.props, pqarrow.NewArrowWriterProperties())
	e.fw = fw
	return err
}

func (e *parquetEncoder) write(rec arrow.RecordBatch, from int, _ int64) (int, error) {
	n := int(rec.NumRows())
	if from > 0 {
		rec = rec.NewSlice(int64(from), int64(n))
		defer rec.Release()
	}
	cols := rec.Columns()
	var wrapped []arrow.Array
	for i, isJSON := range e.json {
		if isJSON {
			if wrapped == nil {
				wrapped = append([]arrow.Array(nil), cols...)
			}
			wrapped[i] = array.NewExtensionArrayWithStorage(e.schema.Field(i).Type.(arrow.ExtensionType), cols[i])
			defer wrapped[i].Release()
		}
	}
	if wrapped != nil {
		cols = wrapped
	}
	out := array.NewRecordBatch(e.schema, cols, rec.NumRows())
	defer out.Release()
	if err := e.fw.WriteBuffered(out); err != nil {
		return from, err
	}
	if e.fw.RowGroupTotalBytesWritten() >= e.rowGroup {
		if err := e.fw.NewBufferedRowGroupChecked(); err != nil {
			return from, err
		}
	}
	return n, nil
}

// size is the bytes written so far plus the pages buffered for the open row group.
func (e *parquetEncoder) size() int64 {
	return int64(e.buf.Len()) + e.fw.RowGroupTotalBytesWritten()
}

func (e *parquetEncoder) finish() ([]byte, error) {
	if err := e.fw.Close(); err != nil {
		return nil, err
	}
	return e.buf.Bytes(), nil
}

// --- CSV and JSON lines ---

type textEncoder struct {
	json    bool
	names   []string
	cols    []valueAppender
	prefix  [][]byte // JSON lines: `{"name":` / `,"name":` per column
	header  []byte
	buf     []byte
	scratch []byte
}

// valueAppender appends the text of a non-null value.
type valueAppender func(b []byte, a arrow.Array, i int) []byte

func newTextEncoder(src Source, json bool) (*textEncoder, error) {
	e := &textEncoder{json: json}
	fields := src.Fields()
	for i, f := range src.Schema().Fields() {
		isJSON := fields[i].Metadata[MetaJSON] == true
		app, err := appenderFor(f.Type, json, isJSON)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", f.Name, err)
		}
		e.names = append(e.names, f.Name)
		e.cols = append(e.cols, app)
		if json {
			p := []byte{','}
			if i == 0 {
				p[0] = '{'
			}
			p = appendJSONString(p, []byte(f.Name))
			e.prefix = append(e.prefix, append(p, ':'))
		} else {
			if i > 0 {
				e.header = append(e.header, ',')
			}
			e.header = appendCSVField(e.header, []byte(f.Name))
		}
	}
	if !json {
		e.header = append(e.header, '\n')
	}
	return e, nil
}

func (e *textEncoder) extension() string {
	if e.json {
		return "json"
	}
	return "csv"
}

func (e *textEncoder) begin() error {
	e.buf = append(make([]byte, 0, 1<<20), e.header...)
	return nil
}

func (e *textEncoder) size() int64 { return int64(len(e.buf)) }

func (e *textEncoder) finish() ([]byte, error) { return e.buf, nil }

func (e *textEncoder) write(rec arrow.RecordBatch, from int, limit int64) (int, error) {
	cols := rec.Columns()
	n := int(rec.NumRows())
	b := e.buf
	i := from
	for ; i < n; i++ {
		if i > from && int64(len(b)) >= limit {
			break // at least one row per call, so that a tiny limit still makes progress
		}
		for c, a := range cols {
			switch {
			case e.json:
				b = append(b, e.prefix[c]...)
				if a.IsNull(i) {
					b = append(b, "null"...)
				} else {
					b = e.cols[c](b, a, i)
				}
			default:
				if c > 0 {
					b = append(b, ',')
				}
				if !a.IsNull(i) {
					b = e.cols[c](b, a, i)
				}
			}
		}
		if e.json {
			if len(cols) == 0 {
				b = append(b, '{')
			}
			b = append(b, '}')
		}
		b = append(b, '\n')
	}
	e.buf = b
	return i, nil
}

// appenderFor picks how a column's values are written: CSV fields (quoted as needed) or
// JSON values.
func appenderFor(t arrow.DataType, json, isJSONDoc bool) (valueAppender, error) {
	switch t.(type) {
	case *arrow.StringType:
		switch {
		case json && isJSONDoc:
			return func(b []byte, a arrow.Array, i int) []byte {
				return appendJSONDocument(b, stringBytes(a.(*array.String), i))
			}, nil
		case json:
			return func(b []byte, a arrow.Array, i int) []byte {
				return appendJSONString(b, stringBytes(a.(*array.String), i))
			}, nil
		}
		return func(b []byte, a arrow.Array, i int) []byte {
			return appendCSVField(b, stringBytes(a.(*array.String), i))
		}, nil
	case *arrow.StructType, *arrow.ListType, *arrow.MapType:
		if json {
			return appendJSONValue, nil
		}
		return func(b []byte, a arrow.Array, i int) []byte {
			// JSON text inside a CSV field: always holds quotes or commas worth quoting.
			var tmp []byte
			return appendCSVField(b, appendJSONValue(tmp, a, i))
		}, nil
	case *arrow.BinaryType, *arrow.Date32Type, *arrow.TimestampType:
		if json {
			return func(b []byte, a arrow.Array, i int) []byte {
				b = append(b, '"')
				b = appendScalarText(b, a, i)
				return append(b, '"')
			}, nil
		}
		return appendScalarText, nil
	case *arrow.Float32Type, *arrow.Float64Type:
		if json {
			return func(b []byte, a arrow.Array, i int) []byte {
				var f float64
				if x, ok := a.(*array.Float32); ok {
					f = float64(x.Value(i))
				} else {
					f = a.(*array.Float64).Value(i)
				}
				if isFinite(f) {
					return appendScalarText(b, a, i)
				}
				b = append(b, '"')
				b = appendScalarText(b, a, i)
				return append(b, '"')
			}, nil
		}
		return appendScalarText, nil
	case *arrow.BooleanType, *arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type, *arrow.Decimal128Type:
		return appendScalarText, nil
	}
	return nil, fmt.Errorf("type %s cannot be exported", t)
}

// stringBytes is a.Value(i) without a copy; the bytes must not be changed.
func stringBytes(a *array.String, i int) []byte {
	s := a.Value(i)
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// appendCSVField writes v, quoted when it is empty (so it differs from NULL) or holds a
// comma, quote or line break.
func appendCSVField(b, v []byte) []byte {
	if len(v) > 0 && bytes.IndexAny(v, ",\"\r\n") < 0 {
		return append(b, v...)
	}
	b = append(b, '"')
	for {
		i := bytes.IndexByte(v, '"')
		if i < 0 {
			break
		}
		b = append(b, v[:i+1]...)
		b = append(b, '"')
		v = v[i+1:]
	}
	b = append(b, v...)
	return append(b, '"')
}
