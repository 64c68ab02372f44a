package connector

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/lakehoused/lakehoused/txlog"
)

// This file is read_csv's Source: options, opening files in turn, and building batches.
// The parts: csv_scan.go splits text into fields without copying them, csv_infer.go picks
// the header and the column types from a sample, csv_types.go maps MySQL type names and
// parses values, csv_convert.go writes values into Arrow buffers.
//
// Choices a user sees:
//   - Inferred text columns are TEXT (values up to 64 KB; LONGTEXT when the sample already
//     holds longer ones), not VARCHAR(n): a length taken from a sample would reject longer
//     values further down the file.
//   - Inferred numbers are BIGINT or DOUBLE, never DECIMAL; give DECIMAL(p,s) in columns=
//     for exact amounts. Numbers written with a leading zero (007) stay text: they are codes.
//   - DATETIME values are wall-clock times stored as UTC; a value with a zone (Z, +02:00)
//     is converted to UTC. The inferred precision is the most fractional digits sampled.
//   - An empty field is NULL, except that "" (quoted) is an empty string in a text column.
//     With null='NA', the unquoted text NA is NULL instead, and an empty unquoted field in
//     a text column is an empty string.
//   - Blank lines are skipped (a one-column file cannot hold a NULL as a blank line).
//   - Columns without a header are named column1, column2, …
//   - A value that does not fit its column fails the read with file, line, column and the
//     value (on_error=null reads it as NULL instead). Rows with the wrong number of fields
//     always fail, whatever on_error says.

// CSVOptionKeys lists the option names OpenCSV accepts:
//
//	header       auto (default), true or false. auto: the first row is a header when its
//	             values are all text and the rows below are not (see csv_infer.go).
//	delimiter    field separator, one or more bytes; default ','. \t means a tab.
//	quote        the byte that encloses fields; default '"'; '' turns quoting off.
//	escape       the byte that makes the next one literal inside quotes; default the quote
//	             itself ("" stands for "). E.g. escape='\'.
//	null         the unquoted text that means NULL; default: an empty unquoted field.
//	             In columns other than text, an empty field is always NULL.
//	skip         lines to skip at the start of each file, before the header; default 0.
//	columns      'name TYPE, …' with MySQL types: names and types, no inference. The
//	             count must match the file's.
//	sample_rows  rows of the first file that type inference looks at; default 20480.
//	on_error     error (default): a value that does not fit its column's type fails the
//	             read, naming file, line and column; null: such values read as NULL.
//	compression  auto (default: gzip and zstd recognised by their first bytes), none,
//	             gzip or zstd.
var CSVOptionKeys = []string{"header", "delimiter", "quote", "escape", "null", "skip", "columns", "sample_rows", "on_error", "compression"}

const (
	headerAuto = iota
	headerOn
	headerOff
)

// csvConfig is the options, checked.
type csvConfig struct {
	dialect     csvDialect
	header      int
	null        string
	hasNull     bool
	skip        int64
	cols        []csvColumn // given by columns=; nil to infer
	sampleRows  int
	nullOnError bool
	compression string
}

func parseCSVOptions(opt Options) (csvConfig, error) {
	cfg := csvConfig{dialect: csvDialect{delim: []byte{','}, quote: '"', hasQuote: true, esc: '"'}, sampleRows: 20480, compression: "auto"}
	for k := range opt {
		if !slices.Contains(CSVOptionKeys, k) {
			return cfg, fmt.Errorf("unknown option %q; known options are: %s", k, strings.Join(CSVOptionKeys, ", "))
		}
	}
	if v, ok := opt["header"]; ok && !strings.EqualFold(strings.TrimSpace(v), "auto") {
		b, err := opt.Bool("header", false)
		if err != nil {
			return cfg, fmt.Errorf("%w (or auto)", err)
		}
		cfg.header = headerOff
		if b {
			cfg.header = headerOn
		}
	}
	if v, ok := opt["delimiter"]; ok {
		d := optionBytes(v)
		if len(d) == 0 {
			return cfg, fmt.Errorf("delimiter is empty; write delimiter=';' or delimiter='\\t' (quote a delimiter that is a comma or semicolon)")
		}
		if strings.ContainsAny(d, "\r\n") {
			return cfg, fmt.Errorf("delimiter %q may not contain a line break", v)
		}
		cfg.dialect.delim = []byte(d)
	}
	if v, ok := opt["quote"]; ok {
		q := optionBytes(v)
		switch len(q) {
		case 0:
			cfg.dialect.hasQuote = false
		case 1:
			cfg.dialect.quote, cfg.dialect.esc = q[0], q[0]
		default:
			return cfg, fmt.Errorf("quote=%q: the quote is one character", v)
		}
	}
	if v, ok := opt["escape"]; ok {
		e := optionBytes(v)
		switch len(e) {
		case 0:
			cfg.dialect.esc = cfg.dialect.quote
		case 1:
			cfg.dialect.esc = e[0]
		default:
			return cfg, fmt.Errorf("escape=%q: the escape is one character", v)
		}
	}
	d := cfg.dialect
	if d.hasQuote && (d.quote == d.delim[0] || d.quote == '\n' || d.quote == '\r') {
		return cfg, fmt.Errorf("quote %q may not be the delimiter or a line break", d.quote)
	}
	if v, ok := opt["null"]; ok {
		cfg.null, cfg.hasNull = v, true
	}
	var err error
	if cfg.skip, err = opt.Int("skip", 0); err != nil {
		return cfg, err
	}
	if cfg.skip < 0 {
		return cfg, fmt.Errorf("skip=%d: want 0 or more lines", cfg.skip)
	}
	n, err := opt.Int("sample_rows", 20480)
	if err != nil {
		return cfg, err
	}
	if n < 1 || n > 1<<24 {
		return cfg, fmt.Errorf("sample_rows=%d: want 1 to %d", n, 1<<24)
	}
	cfg.sampleRows = int(n)
	switch v := strings.ToLower(strings.TrimSpace(opt["on_error"])); v {
	case "", "error":
	case "null":
		cfg.nullOnError = true
	default:
		return cfg, fmt.Errorf("on_error=%q: want error or null", v)
	}
	if v, ok := opt["compression"]; ok {
		cfg.compression = strings.ToLower(strings.TrimSpace(v))
		if !slices.Contains(CompressionModes, cfg.compression) {
			return cfg, fmt.Errorf("compression=%q: want one of %s", v, strings.Join(CompressionModes, ", "))
		}
	}
	if v, ok := opt["columns"]; ok {
		if cfg.cols, err = parseColumnList(v); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// optionBytes reads \t as a tab and \\ as a backslash in a delimiter, quote or escape.
func optionBytes(v string) string {
	return strings.NewReplacer(`\t`, "\t", `\\`, `\`).Replace(v)
}

// csvSource reads CSV files as one table.
type csvSource struct {
	res  *Resolver
	locs []Location
	cfg  csvConfig

	cols      []csvColumn
	fields    []txlog.StructField
	schema    *arrow.Schema
	hasHeader bool     // every file starts with a header line
	header    []string // the first file's header, which the others must repeat

	sc    *csvScanner
	next  int  // index in locs of the next file to open
	open  bool // sc reads locs[next-1]
	raw   io.ReadCloser
	dec   io.ReadCloser
	ch    chunk
	bufs  []colBuf
	nrows int // rows in the batch being built

	rows, bytes atomic.Int64
	total       int64
	err         error // sticky: once failed, Next keeps failing
}

// OpenCSV reads the files in order as one table (same columns in each; a header is expected
// in each file when header is on). The first file's start is read now, to find the columns.
func OpenCSV(ctx context.Context, res *Resolver, locs []Location, opt Options) (Source, error) {
	if len(locs) == 0 {
		return nil, fmt.Errorf("read_csv: no files to read")
	}
	cfg, err := parseCSVOptions(opt)
	if err != nil {
		return nil, fmt.Errorf("read_csv: %w", err)
	}
	r := &csvSource{res: res, locs: locs, cfg: cfg}
	for _, l := range locs {
		if l.Size < 0 {
			r.total = 0
			break
		}
		r.total += l.Size
	}
	r.sc = newCSVScanner(cfg.dialect, make([]byte, 2*csvReadSize))
	if err := r.start(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("read_csv: %w", err)
	}
	return r, nil
}

// start opens the first file, samples it to settle the columns, and consumes its header.
func (r *csvSource) start(ctx context.Context) error {
	if cols := r.cfg.cols; cols != nil {
		r.sc.ncols, r.sc.ncolsAt = len(cols), "the columns option"
	}
	if err := r.openFile(ctx); err != nil {
		return err
	}
	ch := &r.ch
	if err := r.sc.sample(ch, r.cfg.sampleRows+1, 64<<20); err != nil {
		return err
	}
	rows := r.sampleRows(ch)
	header, err := r.decideColumns(rows)
	if err != nil {
		return err
	}
	r.hasHeader = header || r.cfg.header == headerOn
	if header {
		r.header = make([]string, len(rows[0]))
		for j, v := range rows[0] {
			r.header[j] = strings.TrimSpace(string(v))
		}
		if _, err := r.sc.one(ch); err != nil {
			return err
		}
	}
	r.fields = make([]txlog.StructField, len(r.cols))
	r.bufs = make([]colBuf, len(r.cols))
	for j := range r.cols {
		r.fields[j] = r.cols[j].field()
		r.bufs[j] = newColBuf(r.cols[j].kind, 16*BatchRows)
	}
	r.schema, err = ArrowSchemaOf(r.fields)
	return err
}

// countingReader counts the bytes read through it, for Progress.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// openFile starts reading locs[next]; after the first file it checks the header.
func (r *csvSource) openFile(ctx context.Context) error {
	l := r.locs[r.next]
	raw, err := r.res.Open(ctx, l)
	if err != nil {
		return err
	}
	r.raw, r.next, r.open = raw, r.next+1, true
	name := strings.TrimPrefix(l.URL, "file://")
	dec, err := Decompress(countingReader{raw, &r.bytes}, r.cfg.compression)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r.dec = dec
	r.sc.reset(dec, name)
	if err := r.sc.start(r.cfg.skip); err != nil {
		return err
	}
	if r.next == 1 || !r.hasHeader {
		return nil
	}
	ok, err := r.sc.one(&r.ch)
	if err != nil || !ok || r.header == nil {
		return err
	}
	for j, sp := range r.ch.spans {
		if got := strings.TrimSpace(string(r.ch.bytes(r.sc.buf, sp))); !strings.EqualFold(got, r.header[j]) {
			return fmt.Errorf("%s line %d: column %d is headed %q where %s has %q; the files must have the same columns (or give header=false and skip=1)",
				name, r.ch.lines[0], j+1, got, strings.TrimPrefix(r.locs[0].URL, "file://"), r.header[j])
		}
	}
	return nil
}

func (r *csvSource) closeFile() error {
	var err error
	if r.dec != nil {
		err = r.dec.Close()
		r.dec = nil
	}
	if r.raw != nil {
		if e := r.raw.Close(); err == nil {
			err = e
		}
		r.raw = nil
	}
	r.open = false
	return err
}

func (r *csvSource) Fields() []txlog.StructField { return r.fields }
func (r *csvSource) Schema() *arrow.Schema       { return r.schema }

func (r *csvSource) Progress() Progress {
	return Progress{Rows: r.rows.Load(), Bytes: r.bytes.Load(), TotalBytes: r.total}
}

func (r *csvSource) Close() error {
	return r.closeFile()
}

func (r *csvSource) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if r.err != nil {
		return nil, r.err
	}
	if err := r.fillBatch(ctx); err != nil {
		r.err = fmt.Errorf("read_csv: %w", err)
		r.closeFile()
		return nil, r.err
	}
	if r.nrows == 0 {
		return nil, io.EOF
	}
	return r.emit(), nil
}

// chunkRows bounds the records parsed before they are converted, so that a chunk's fields
// and text stay in the CPU cache while each column is converted in turn.
const chunkRows = 1024

// fillBatch converts records into the batch until it is full or the last file ends.
func (r *csvSource) fillBatch(ctx context.Context) error {
	for r.nrows < BatchRows {
		if !r.open {
			if r.next == len(r.locs) {
				return nil
			}
			if err := r.openFile(ctx); err != nil {
				return err
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r.ch.reset()
		if err := r.sc.split(&r.ch, min(BatchRows-r.nrows, chunkRows)); err != nil {
			return err
		}
		if r.ch.records() > 0 {
			if err := r.convert(&r.ch); err != nil {
				return err
			}
			continue
		}
		if r.sc.done() {
			if err := r.closeFile(); err != nil {
				return err
			}
			continue
		}
		if err := r.sc.fill(); err != nil {
			return err
		}
	}
	return nil
}

// emit hands the batch built so far to the caller and starts the next.
func (r *csvSource) emit() arrow.RecordBatch {
	n := r.nrows
	arrs := make([]arrow.Array, len(r.cols))
	for j := range r.cols {
		k := r.cols[j].kind
		arrs[j] = r.bufs[j].array(r.schema.Field(j).Type, k, n)
		// Size the next batch's text like this one's, with room to spare, so that it
		// rarely grows (and copies) while filling.
		r.bufs[j] = newColBuf(k, len(r.bufs[j].data)/n*BatchRows*9/8)
	}
	rec := array.NewRecordBatch(r.schema, arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	r.nrows = 0
	r.rows.Add(int64(n))
	return rec
}
