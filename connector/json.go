package connector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehoused/lakehoused/txlog"
)

// JSONOptions tune OpenJSON.
type JSONOptions struct {
	// SampleRows is how many records, from the start of the input, decide the columns and
	// their types. Default 20480. The sample also stops at 128 MiB of JSON.
	SampleRows int
	// Compression is "auto" (the default: gzip and zstd are recognised by their magic
	// bytes), "none", "gzip" or "zstd".
	Compression string
}

const (
	defaultJSONSampleRows = 20480
	maxJSONSampleBytes    = 128 << 20
)

// OpenJSON reads JSON lines (one object per line) or a JSON array of objects, told apart by
// the first non-space byte of each file, from each file in order, as one table.
//
// The columns are the keys of the first SampleRows objects, in first-seen order; a key
// that first appears later is an error naming it, the file and the line (or record number,
// for arrays). Each column's type follows from the values the sample holds for it, nulls
// aside:
//
//	only true/false                          boolean
//	only integers that fit int64             long
//	only numbers, some not such integers     double
//	only strings                             string (dates and times stay strings)
//	only objects/arrays                      string holding compact JSON (MySQL type json)
//	a mix that includes objects/arrays       the same JSON column, every value as JSON text
//	any other mix, or only nulls             string: numbers in their JSON text, true/false
//
// A key missing from an object is NULL; when an object repeats a key, the last value
// counts. Later values must fit the column: a boolean, long or double column refuses other
// kinds (the error names file, line and key, and suggests a larger sample), while string
// columns take any value as text and JSON columns any value as JSON.
func OpenJSON(ctx context.Context, res *Resolver, locs []Location, opt JSONOptions) (Source, error) {
	if len(locs) == 0 {
		return nil, errors.New("read_json: no files to read")
	}
	if opt.SampleRows <= 0 {
		opt.SampleRows = defaultJSONSampleRows
	}
	switch opt.Compression = strings.ToLower(opt.Compression); opt.Compression {
	case "":
		opt.Compression = "auto"
	case "auto", "none", "gzip", "zstd":
	default:
		return nil, fmt.Errorf("read_json: unknown compression %q; use auto, none, gzip or zstd", opt.Compression)
	}
	s := &jsonSource{res: res, locs: locs, opt: opt, index: map[string]int{}}
	for _, l := range locs {
		if l.Size > 0 {
			s.progress.TotalBytes += l.Size
		}
	}
	if err := s.takeSample(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.setColumns(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

type jsonColKind uint8

const (
	colString jsonColKind = iota
	colBool
	colLong
	colDouble
	colJSON
)

var jsonColTypes = [...]string{colString: "string", colBool: "boolean", colLong: "long", colDouble: "double", colJSON: "json"}

// keyStats counts the kinds of value the sample holds for one key.
type keyStats struct {
	bools, ints, floats, strings, nested int
}

func (k keyStats) kind() jsonColKind {
	nums := k.ints + k.floats
	switch {
	case k.nested > 0:
		return colJSON
	case k.bools > 0 && nums+k.strings == 0:
		return colBool
	case nums > 0 && k.bools+k.strings == 0:
		if k.floats == 0 {
			return colLong
		}
		return colDouble
	}
	return colString
}

// jsonRecordAt says where a record came from, for messages: file index, line, and the
// record number in an array (0 for JSON lines).
type jsonRecordAt struct {
	file, line, rec int
}

type sampledRecord struct {
	lo, hi int // in sampleData
	at     jsonRecordAt
}

type jsonInput struct {
	idx     int
	raw     io.ReadCloser
	counted countingReader
	closeFn func() error // the decompressor's
	split   *recordSplitter
}

type jsonSource struct {
	res    *Resolver
	locs   []Location
	opt    JSONOptions
	fields []txlog.StructField
	schema *arrow.Schema
	names  []string
	index  map[string]int
	stats  []keyStats
	kinds  []jsonColKind

	in        *jsonInput // nil between files
	nextFile  int
	doneBytes int64 // input bytes of closed files

	sample     []sampledRecord
	sampleData []byte
	sampleNext int
	sampled    int // records the columns were inferred from

	p       jsonParser
	seen    []uint64 // generation of the row that last set the column
	gen     uint64
	vals    []jsonValue
	rb      *array.RecordBuilder
	scratch bytes.Buffer
	// dataBytes, after a full batch, holds its string data size per column.
	dataBytes []int

	progress Progress
	failed   error
	closed   bool
}

func (s *jsonSource) openInput(ctx context.Context, i int) error {
	loc := s.locs[i]
	rc, err := s.res.Open(ctx, loc)
	if err != nil {
		return fmt.Errorf("read_json: opening %s: %w", loc.URL, err)
	}
	in := &jsonInput{idx: i, raw: rc, counted: countingReader{r: rc, n: new(atomic.Int64)}}
	dr, err := Decompress(in.counted, s.opt.Compression)
	var r io.Reader = dr
	closeFn := func() error { return nil }
	if dr != nil {
		closeFn = dr.Close
	}
	if err != nil {
		rc.Close()
		return fmt.Errorf("read_json: %s: %w", loc.URL, err)
	}
	in.closeFn = closeFn
	in.split, err = newRecordSplitter(bufio.NewReaderSize(r, 1<<20))
	if err != nil {
		in.close()
		return fmt.Errorf("read_json: %s %w", loc.URL, err)
	}
	s.in = in
	return nil
}

func (in *jsonInput) close() {
	in.closeFn()
	in.raw.Close()
}

// read returns the next record of the input, moving from file to file, or io.EOF.
func (s *jsonSource) read(ctx context.Context) ([]byte, jsonRecordAt, error) {
	for {
		if s.in == nil {
			if s.nextFile >= len(s.locs) {
				return nil, jsonRecordAt{}, io.EOF
			}
			if err := s.openInput(ctx, s.nextFile); err != nil {
				return nil, jsonRecordAt{}, err
			}
			s.nextFile++
		}
		in := s.in
		b, err := in.split.record()
		if err == nil {
			at := jsonRecordAt{file: in.idx, line: in.split.line}
			if in.split.array {
				at.rec = in.split.count
			}
			return b, at, nil
		}
		if err != io.EOF {
			return nil, jsonRecordAt{}, fmt.Errorf("read_json: %s %w", s.locs[in.idx].URL, err)
		}
		s.doneBytes += in.counted.n.Load()
		in.close()
		s.in = nil
	}
}

// where names a record's place: file and line, and the record number in an array.
func (s *jsonSource) where(at jsonRecordAt) string {
	if at.rec > 0 {
		return fmt.Sprintf("%s record %d (line %d)", s.locs[at.file].URL, at.rec, at.line)
	}
	return fmt.Sprintf("%s line %d", s.locs[at.file].URL, at.line)
}

func (s *jsonSource) syntaxError(at jsonRecordAt, data []byte, err error) error {
	var se *jsonSyntaxError
	if !errors.As(err, &se) {
		return fmt.Errorf("read_json: %s: %w", s.where(at), err)
	}
	off := min(se.off, len(data))
	line := at.line + bytes.Count(data[:off], []byte{'\n'})
	col := off - bytes.LastIndexByte(data[:off], '\n')
	hint := ""
	if at.rec == 0 && strings.Contains(se.msg, "end of the object") {
		hint = "; JSON lines need one whole object per line (or use a JSON array)"
	}
	return fmt.Errorf("read_json: %s line %d column %d: %s%s", s.locs[at.file].URL, line, col, se.msg, hint)
}

// takeSample reads up to SampleRows records, keeping their bytes, and collects the keys
// and the kinds of their values.
func (s *jsonSource) takeSample(ctx context.Context) error {
	for len(s.sample) < s.opt.SampleRows && len(s.sampleData) < maxJSONSampleBytes {
		b, at, err := s.read(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		lo := len(s.sampleData)
		s.sampleData = append(s.sampleData, b...)
		s.sample = append(s.sample, sampledRecord{lo: lo, hi: len(s.sampleData), at: at})
		if err := s.p.parseRecord(b); err != nil {
			return s.syntaxError(at, b, err)
		}
		for _, m := range s.p.members {
			key := s.p.bytes(m.key)
			i, ok := s.index[string(key)]
			if !ok {
				i = len(s.names)
				s.names = append(s.names, string(key))
				s.index[string(key)] = i
				s.stats = append(s.stats, keyStats{})
			}
			st := &s.stats[i]
			switch m.val.kind {
			case jBool:
				st.bools++
			case jString:
				st.strings++
			case jNested:
				st.nested++
			case jNumber:
				if _, ok := parseInt64(s.p.bytes(m.val.raw)); ok && m.val.isInt {
					st.ints++
				} else {
					st.floats++
				}
			}
		}
	}
	s.sampled = len(s.sample)
	if len(s.names) == 0 {
		return fmt.Errorf("read_json: found no keys to make columns of in the first %d records of %s", len(s.sample), s.locs[0].URL)
	}
	return nil
}

func (s *jsonSource) setColumns() error {
	lower := map[string]string{}
	for i, name := range s.names {
		if other, ok := lower[strings.ToLower(name)]; ok {
			return fmt.Errorf("read_json: keys %q and %q differ only in case, and column names must differ ignoring case; rename one in the data", other, name)
		}
		lower[strings.ToLower(name)] = name
		k := s.stats[i].kind()
		s.kinds = append(s.kinds, k)
		f := txlog.StructField{Name: name, Type: txlog.DataType{Name: jsonColTypes[k]}, Nullable: true}
		if k == colJSON {
			f.Type.Name = "string"
			f.Metadata = map[string]any{MetaJSON: true, MetaMySQLType: "json"}
		}
		s.fields = append(s.fields, f)
	}
	var err error
	if s.schema, err = ArrowSchemaOf(s.fields); err != nil {
		return fmt.Errorf("read_json: %w", err)
	}
	s.rb = array.NewRecordBuilder(memory.DefaultAllocator, s.schema)
	s.seen = make([]uint64, len(s.names))
	s.vals = make([]jsonValue, len(s.names))
	return nil
}

func (s *jsonSource) Fields() []txlog.StructField { return s.fields }
func (s *jsonSource) Schema() *arrow.Schema       { return s.schema }

func (s *jsonSource) Progress() Progress {
	p := s.progress
	p.Bytes = s.doneBytes
	if s.in != nil {
		p.Bytes += s.in.counted.n.Load()
	}
	return p
}

func (s *jsonSource) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if s.closed {
		return nil, errors.New("read_json: Next after Close")
	}
	if s.failed != nil {
		return nil, s.failed
	}
	if s.dataBytes != nil {
		// The previous batch was full: size the builders for another like it rather than
		// growing them step by step.
		for i, fb := range s.rb.Fields() {
			fb.Reserve(BatchRows)
			if sb, ok := fb.(*array.StringBuilder); ok {
				sb.ReserveData(s.dataBytes[i])
			}
		}
	}
	n := 0
	for n < BatchRows {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		var b []byte
		var at jsonRecordAt
		if s.sampleNext < len(s.sample) {
			r := s.sample[s.sampleNext]
			s.sampleNext++
			b, at = s.sampleData[r.lo:r.hi], r.at
			if s.sampleNext == len(s.sample) {
				defer s.dropSample()
			}
		} else {
			var err error
			if b, at, err = s.read(ctx); err == io.EOF {
				break
			} else if err != nil {
				s.failed = err
				return nil, err
			}
		}
		if err := s.appendRecord(b, at); err != nil {
			s.failed = err
			return nil, err
		}
		n++
	}
	if n == 0 {
		return nil, io.EOF
	}
	s.progress.Rows += int64(n)
	rec := s.rb.NewRecordBatch()
	if n == BatchRows {
		s.dataBytes = make([]int, rec.NumCols())
		for i, c := range rec.Columns() {
			if sa, ok := c.(*array.String); ok {
				offs := sa.ValueOffsets()
				s.dataBytes[i] = int(offs[len(offs)-1] - offs[0])
			}
		}
	} else {
		s.dataBytes = nil
	}
	return rec, nil
}

func (s *jsonSource) dropSample() { s.sample, s.sampleData = nil, nil }

// appendRecord parses one record and appends it as a row.
func (s *jsonSource) appendRecord(b []byte, at jsonRecordAt) error {
	p := &s.p
	if err := p.parseRecord(b); err != nil {
		return s.syntaxError(at, b, err)
	}
	s.gen++
	for pos, m := range p.members {
		key := p.bytes(m.key)
		// Objects usually list their keys in the same order: try the column at the
		// member's position before the map.
		i := pos
		if i >= len(s.names) || s.names[i] != string(key) {
			var ok bool
			if i, ok = s.index[string(key)]; !ok {
				return fmt.Errorf("read_json: %s: key %q is not among the columns found in the first %d records (%s); raise sample_rows so that the sample includes it",
					s.where(at), key, s.sampled, listNames(s.names))
			}
		}
		s.seen[i] = s.gen
		s.vals[i] = m.val
	}
	for i, k := range s.kinds {
		fb := s.rb.Field(i)
		v := &s.vals[i]
		if s.seen[i] != s.gen || v.kind == jNull {
			fb.AppendNull()
			continue
		}
		var ok bool
		switch k {
		case colBool:
			if ok = v.kind == jBool; ok {
				fb.(*array.BooleanBuilder).Append(v.b)
			}
		case colLong:
			if v.kind == jNumber && v.isInt {
				var n int64
				if n, ok = parseInt64(p.bytes(v.raw)); ok {
					fb.(*array.Int64Builder).Append(n)
				}
			}
		case colDouble:
			if v.kind == jNumber {
				t := p.bytes(v.raw)
				f, err := strconv.ParseFloat(unsafe.String(&t[0], len(t)), 64)
				if ok = err == nil; ok {
					fb.(*array.Float64Builder).Append(f)
				}
			}
		case colString:
			sb := fb.(*array.StringBuilder).BinaryBuilder
			switch v.kind {
			case jString:
				sb.Append(p.bytes(v.str))
			case jNested:
				t, err := s.compact(p.bytes(v.raw))
				if err != nil {
					return s.syntaxError(at, b, &jsonSyntaxError{off: int(v.raw.lo), msg: fmt.Sprintf("key %q: %v", s.names[i], err)})
				}
				sb.Append(t)
			default:
				sb.Append(p.bytes(v.raw))
			}
			ok = true
		case colJSON:
			sb := fb.(*array.StringBuilder).BinaryBuilder
			if v.kind == jNested {
				t, err := s.compact(p.bytes(v.raw))
				if err != nil {
					return s.syntaxError(at, b, &jsonSyntaxError{off: int(v.raw.lo), msg: fmt.Sprintf("key %q: %v", s.names[i], err)})
				}
				sb.Append(t)
			} else {
				sb.Append(p.bytes(v.raw))
			}
			ok = true
		}
		if !ok {
			return fmt.Errorf("read_json: %s: key %q holds %s, which does not fit column %q of type %s inferred from the first %d records; raise sample_rows so that the sample includes such values, or correct the data",
				s.where(at), s.names[i], describeJSON(p.bytes(v.raw)), s.names[i], jsonColTypes[k], s.sampled)
		}
	}
	return nil
}

func (s *jsonSource) compact(raw []byte) ([]byte, error) {
	s.scratch.Reset()
	if err := json.Compact(&s.scratch, raw); err != nil {
		return nil, err
	}
	return s.scratch.Bytes(), nil
}

func describeJSON(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:37]) + "..."
	}
	return string(raw)
}

func listNames(names []string) string {
	if len(names) > 20 {
		return strings.Join(names[:20], ", ") + ", …"
	}
	return strings.Join(names, ", ")
}

// parseInt64 parses a JSON integer, reporting false when it does not fit int64.
func parseInt64(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		n, err := strconv.ParseInt(string(b), 10, 64)
		return n, err == nil
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func (s *jsonSource) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.in != nil {
		s.in.close()
		s.in = nil
	}
	if s.rb != nil {
		s.rb.Release()
	}
	s.dropSample()
	return nil
}
