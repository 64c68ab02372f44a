package connector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// OpenParquet reads the Parquet files in order as one table. Every file must have the same
// columns (names and Delta types, in order); the first file fixes them, and a file that
// differs is an error naming it and the first difference. Files are checked as they are
// reached, so a mismatch in the last file is found after the others were read.
//
// Columns keep their type when Delta has it; the rest widen to the nearest Delta type (see
// deltaTypeOf). Reading goes row group by row group in batches of at most BatchRows rows,
// decoding the columns of a batch in parallel, so memory stays near one row group's
// compressed column chunks plus one batch, whatever the file size.
func OpenParquet(ctx context.Context, res *Resolver, locs []Location) (Source, error) {
	if len(locs) == 0 {
		return nil, errors.New("read_parquet: no files to read")
	}
	s := &parquetSource{res: res, locs: locs, mem: memory.DefaultAllocator}
	for _, l := range locs {
		if l.Size > 0 {
			s.progress.TotalBytes += l.Size
		}
	}
	f, err := s.openFile(ctx, 0)
	if err != nil {
		return nil, err
	}
	s.fields = f.fields
	s.schema, err = ArrowSchemaOf(s.fields)
	if err != nil {
		f.close()
		return nil, fmt.Errorf("read_parquet %s: %w", locs[0].URL, err)
	}
	s.cur, s.next = f, 1
	return s, nil
}

type parquetSource struct {
	res      *Resolver
	locs     []Location
	mem      memory.Allocator
	fields   []txlog.StructField
	schema   *arrow.Schema
	cur      *parquetFile // nil between files
	next     int          // index in locs of the next file to open
	progress Progress
	failed   error // the first error of Next, returned again: no batches follow it
	closed   bool
}

// parquetFile is one open file and how far it has been read.
type parquetFile struct {
	loc    Location
	rc     storage.ReaderAtCloser
	pf     *file.Reader
	fr     *pqarrow.FileReader
	fields []txlog.StructField
	want   []arrow.DataType // target Arrow type per column
	same   []bool           // column already has its target type: passed through as is
	rg     int              // next row group
	rr     pqarrow.RecordReader
}

func (f *parquetFile) close() {
	if f.rr != nil {
		f.rr.Release()
		f.rr = nil
	}
	if f.pf != nil {
		f.pf.Close() // closes nothing we own: the reader was given a SectionReader
	}
	if f.rc != nil {
		f.rc.Close()
	}
}

func (s *parquetSource) openFile(ctx context.Context, i int) (*parquetFile, error) {
	loc := s.locs[i]
	rc, size, err := s.res.OpenRandom(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("read_parquet: opening %s: %w", loc.URL, err)
	}
	if loc.Size < 0 {
		s.progress.TotalBytes += size
	}
	f := &parquetFile{loc: loc, rc: rc}
	f.pf, err = file.NewParquetReader(io.NewSectionReader(rc, 0, size), file.WithReadProps(parquet.NewReaderProperties(s.mem)))
	if err != nil {
		f.close()
		return nil, fmt.Errorf("read_parquet: %s is not a readable Parquet file: %w", loc.URL, err)
	}
	f.fr, err = pqarrow.NewFileReader(f.pf, pqarrow.ArrowReadProperties{Parallel: true, BatchSize: BatchRows, PreAllocBinaryData: true}, s.mem)
	if err != nil {
		f.close()
		return nil, fmt.Errorf("read_parquet: reading the schema of %s: %w", loc.URL, err)
	}
	as, err := f.fr.Schema()
	if err != nil {
		f.close()
		return nil, fmt.Errorf("read_parquet: reading the schema of %s: %w", loc.URL, err)
	}
	if as.NumFields() == 0 {
		f.close()
		return nil, fmt.Errorf("read_parquet: %s has no columns", loc.URL)
	}
	for j, af := range as.Fields() {
		dt, meta, err := deltaTypeOf(af.Type)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("read_parquet: %s column %q: %w", loc.URL, af.Name, err)
		}
		// pqarrow reads byte arrays annotated JSON or ENUM as binary; they are text.
		if mf := f.fr.Manifest.Fields[j]; mf.IsLeaf() && dt.Name == "binary" {
			switch f.pf.MetaData().Schema.Column(mf.ColIndex).LogicalType().(type) {
			case schema.JSONLogicalType:
				dt, meta = txlog.DataType{Name: "string"}, map[string]any{MetaJSON: true, MetaMySQLType: "json"}
			case schema.EnumLogicalType:
				dt = txlog.DataType{Name: "string"}
			}
		}
		want, err := table.ArrowType(dt)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("read_parquet: %s column %q: %w", loc.URL, af.Name, err)
		}
		f.fields = append(f.fields, txlog.StructField{Name: af.Name, Type: dt, Nullable: true, Metadata: meta})
		f.want = append(f.want, want)
		f.same = append(f.same, arrow.TypeEqual(af.Type, want))
	}
	return f, nil
}

// sameColumns reports the first difference between the columns of the first file and f.
func (s *parquetSource) sameColumns(f *parquetFile) error {
	first := s.locs[0].Name()
	for i, c := range f.fields {
		if i >= len(s.fields) {
			return fmt.Errorf("read_parquet: %s has column %q, which %s lacks; all files must have the same columns", f.loc.URL, c.Name, first)
		}
		w := s.fields[i]
		if c.Name != w.Name {
			return fmt.Errorf("read_parquet: column %d of %s is %q but %q in %s; all files must have the same columns in the same order", i+1, f.loc.URL, c.Name, w.Name, first)
		}
		if a, b := typeString(c.Type), typeString(w.Type); a != b {
			return fmt.Errorf("read_parquet: column %q is %s in %s but %s in %s; all files must have the same column types", c.Name, a, f.loc.URL, b, first)
		}
	}
	if len(f.fields) < len(s.fields) {
		return fmt.Errorf("read_parquet: %s lacks column %q, which %s has; all files must have the same columns", f.loc.URL, s.fields[len(f.fields)].Name, first)
	}
	return nil
}

func typeString(t txlog.DataType) string {
	if t.Name != "" {
		return t.Name
	}
	b, _ := t.MarshalJSON()
	return string(b)
}

func (s *parquetSource) Fields() []txlog.StructField { return s.fields }
func (s *parquetSource) Schema() *arrow.Schema       { return s.schema }
func (s *parquetSource) Progress() Progress          { return s.progress }

func (s *parquetSource) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if s.closed {
		return nil, errors.New("read_parquet: Next after Close")
	}
	if s.failed != nil {
		return nil, s.failed
	}
	rec, err := s.next1(ctx)
	if err != nil && err != io.EOF {
		s.failed = err
	}
	return rec, err
}

func (s *parquetSource) next1(ctx context.Context) (arrow.RecordBatch, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s.cur == nil {
			if s.next >= len(s.locs) {
				return nil, io.EOF
			}
			f, err := s.openFile(ctx, s.next)
			if err != nil {
				return nil, err
			}
			s.next++
			if err := s.sameColumns(f); err != nil {
				f.close()
				return nil, err
			}
			s.cur = f
		}
		f := s.cur
		if f.rr == nil {
			if f.rg >= f.pf.NumRowGroups() {
				f.close()
				s.cur = nil
				continue
			}
			rr, err := f.fr.GetRecordReader(ctx, nil, []int{f.rg})
			if err != nil {
				return nil, fmt.Errorf("read_parquet: %s row group %d: %w", f.loc.URL, f.rg, err)
			}
			f.rr = rr
			s.progress.Bytes += rowGroupBytes(f.pf, f.rg)
			f.rg++
		}
		if !f.rr.Next() {
			err := f.rr.Err()
			f.rr.Release()
			f.rr = nil
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("read_parquet: decoding %s row group %d: %w", f.loc.URL, f.rg-1, err)
			}
			continue
		}
		rec := f.rr.RecordBatch()
		if rec.NumRows() == 0 {
			continue
		}
		out, err := s.convert(ctx, f, rec)
		if err != nil {
			return nil, err
		}
		s.progress.Rows += out.NumRows()
		return out, nil
	}
}

func rowGroupBytes(pf *file.Reader, rg int) int64 {
	md := pf.MetaData().RowGroup(rg)
	if n := md.TotalCompressedSize(); n > 0 {
		return n
	}
	var n int64
	for c := range md.NumColumns() {
		if cc, err := md.ColumnChunk(c); err == nil {
			n += cc.TotalCompressedSize()
		}
	}
	return n
}

// convert returns rec with the source schema: columns already of their target type are
// shared (no copy), the others converted.
func (s *parquetSource) convert(ctx context.Context, f *parquetFile, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, c := range rec.Columns() {
		if f.same[i] {
			c.Retain()
			cols[i] = c
			continue
		}
		out, err := convertArray(ctx, s.mem, c, f.want[i])
		if err != nil {
			return nil, fmt.Errorf("read_parquet: %s column %q: %w", f.loc.URL, f.fields[i].Name, err)
		}
		cols[i] = out
	}
	return array.NewRecordBatch(s.schema, cols, rec.NumRows()), nil
}

func (s *parquetSource) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.cur != nil {
		s.cur.close()
		s.cur = nil
	}
	return nil
}

// deltaTypeOf maps an Arrow type read from Parquet to the Delta type it is imported as, and
// the column metadata that keeps what Delta cannot say:
//
//	int8/16/32/64, float32/64, boolean, date32, decimal128 (p ≤ 38)  as they are
//	uint8 → short, uint16 → integer, uint32 → long, uint64 → decimal(20,0) (MySQL unsigned types)
//	float16 → float; date64 → date
//	string, large_string, string_view → string; binary kinds → binary
//	timestamp of any unit → microseconds: with a zone → timestamp (UTC), without → timestamp_ntz
//	decimal256, time32, time64, null → string
//	dictionary → its value type; list, struct, map → array, struct, map of the mapped types
func deltaTypeOf(t arrow.DataType) (txlog.DataType, map[string]any, error) {
	prim := func(name string) (txlog.DataType, map[string]any, error) {
		return txlog.DataType{Name: name}, nil, nil
	}
	withMySQL := func(name, mysql string) (txlog.DataType, map[string]any, error) {
		return txlog.DataType{Name: name}, map[string]any{MetaMySQLType: mysql}, nil
	}
	switch t := t.(type) {
	case arrow.ExtensionType:
		dt, meta, err := deltaTypeOf(t.StorageType())
		if err == nil && t.ExtensionName() == "arrow.json" && dt.Name == "string" {
			meta = map[string]any{MetaJSON: true, MetaMySQLType: "json"}
		}
		return dt, meta, err
	case *arrow.DictionaryType:
		return deltaTypeOf(t.ValueType)
	case *arrow.BooleanType:
		return prim("boolean")
	case *arrow.Int8Type:
		return prim("byte")
	case *arrow.Int16Type:
		return prim("short")
	case *arrow.Int32Type:
		return prim("integer")
	case *arrow.Int64Type:
		return prim("long")
	case *arrow.Uint8Type:
		return withMySQL("short", "tinyint unsigned")
	case *arrow.Uint16Type:
		return withMySQL("integer", "smallint unsigned")
	case *arrow.Uint32Type:
		return withMySQL("long", "int unsigned")
	case *arrow.Uint64Type:
		return withMySQL("decimal(20,0)", "bigint unsigned")
	case *arrow.Float16Type, *arrow.Float32Type:
		return prim("float")
	case *arrow.Float64Type:
		return prim("double")
	case *arrow.StringType, *arrow.LargeStringType, *arrow.StringViewType, *arrow.NullType:
		return prim("string")
	case *arrow.BinaryType, *arrow.LargeBinaryType, *arrow.BinaryViewType, *arrow.FixedSizeBinaryType:
		return prim("binary")
	case *arrow.Date32Type, *arrow.Date64Type:
		return prim("date")
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return prim("timestamp")
		}
		return prim("timestamp_ntz")
	case *arrow.Time32Type, *arrow.Time64Type:
		return prim("string")
	case *arrow.Decimal32Type:
		return prim(fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale))
	case *arrow.Decimal64Type:
		return prim(fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale))
	case *arrow.Decimal128Type:
		return prim(fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale))
	case *arrow.Decimal256Type:
		return prim("string")
	case *arrow.ListType:
		return deltaArrayOf(t.Elem())
	case *arrow.LargeListType:
		return deltaArrayOf(t.Elem())
	case *arrow.FixedSizeListType:
		return deltaArrayOf(t.Elem())
	case *arrow.MapType:
		k, _, err := deltaTypeOf(t.KeyType())
		if err != nil {
			return txlog.DataType{}, nil, fmt.Errorf("map key: %w", err)
		}
		v, _, err := deltaTypeOf(t.ItemType())
		if err != nil {
			return txlog.DataType{}, nil, fmt.Errorf("map value: %w", err)
		}
		return txlog.DataType{Map: &txlog.MapType{KeyType: k, ValueType: v, ValueContainsNull: true}}, nil, nil
	case *arrow.StructType:
		var fs []txlog.StructField
		for _, f := range t.Fields() {
			dt, _, err := deltaTypeOf(f.Type)
			if err != nil {
				return txlog.DataType{}, nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			fs = append(fs, txlog.StructField{Name: f.Name, Type: dt, Nullable: true})
		}
		return txlog.DataType{Struct: &txlog.Schema{Type: "struct", Fields: fs}}, nil, nil
	}
	return txlog.DataType{}, nil, fmt.Errorf("type %s has no Delta equivalent; convert it to a standard type (string, number, date, timestamp) before reading", t)
}

func deltaArrayOf(elem arrow.DataType) (txlog.DataType, map[string]any, error) {
	e, _, err := deltaTypeOf(elem)
	if err != nil {
		return txlog.DataType{}, nil, fmt.Errorf("list element: %w", err)
	}
	return txlog.DataType{Array: &txlog.ArrayType{ElementType: e, ContainsNull: true}}, nil, nil
}

// convertArray returns arr as an array of type want (a type deltaTypeOf's mapping leads
// to). Nested arrays are rebuilt around converted children, reusing their validity and
// offset buffers; leaves go through the cast kernel except where it has no kernel
// (decimal256 and times to string). The caller releases the result.
func convertArray(ctx context.Context, mem memory.Allocator, arr arrow.Array, want arrow.DataType) (arrow.Array, error) {
	if arrow.TypeEqual(arr.DataType(), want) {
		arr.Retain()
		return arr, nil
	}
	switch a := arr.(type) {
	case array.ExtensionArray:
		return convertArray(ctx, mem, a.Storage(), want)
	case *array.Dictionary:
		plain, err := compute.CastArray(ctx, a, compute.SafeCastOptions(a.DataType().(*arrow.DictionaryType).ValueType))
		if err != nil {
			return nil, err
		}
		defer plain.Release()
		return convertArray(ctx, mem, plain, want)
	case *array.Null:
		return array.MakeArrayOfNull(mem, want, a.Len()), nil
	case *array.Decimal256:
		scale := a.DataType().(*arrow.Decimal256Type).Scale
		return stringsOf(mem, a, func(i int) string { return a.Value(i).ToString(scale) }), nil
	case *array.Time32:
		unit := a.DataType().(*arrow.Time32Type).Unit
		return stringsOf(mem, a, func(i int) string {
			return string(appendTimeOfDay(nil, int64(a.Value(i))*int64(unit.Multiplier()/arrow.Microsecond.Multiplier())))
		}), nil
	case *array.Time64:
		unit := a.DataType().(*arrow.Time64Type).Unit
		div := int64(1)
		if unit == arrow.Nanosecond {
			div = 1000
		}
		return stringsOf(mem, a, func(i int) string { return string(appendTimeOfDay(nil, int64(a.Value(i))/div)) }), nil
	case *array.Struct:
		wt, ok := want.(*arrow.StructType)
		if !ok {
			break
		}
		d := a.Data()
		children := make([]arrow.ArrayData, len(d.Children()))
		for i, cd := range d.Children() {
			c := array.MakeFromData(cd)
			out, err := convertArray(ctx, mem, c, wt.Field(i).Type)
			c.Release()
			if err != nil {
				releaseData(children)
				return nil, fmt.Errorf("field %q: %w", wt.Field(i).Name, err)
			}
			children[i] = out.Data()
			children[i].Retain()
			out.Release()
		}
		defer releaseData(children)
		return rebuild(want, d, children), nil
	case *array.Map:
		return convertList(ctx, mem, a, want)
	case *array.List:
		return convertList(ctx, mem, a, want)
	case *array.LargeList, *array.FixedSizeList:
		// Offsets differ in width or are implicit: go through the cast kernel to list.
		wl, ok := want.(*arrow.ListType)
		if !ok {
			break
		}
		var elem arrow.DataType
		if l, ok := a.DataType().(*arrow.LargeListType); ok {
			elem = l.Elem()
		} else {
			elem = a.DataType().(*arrow.FixedSizeListType).Elem()
		}
		l, err := compute.CastArray(ctx, a, compute.SafeCastOptions(arrow.ListOfField(arrow.Field{Name: wl.ElemField().Name, Type: elem, Nullable: true})))
		if err != nil {
			return nil, err
		}
		defer l.Release()
		return convertArray(ctx, mem, l, want)
	}
	opts := compute.SafeCastOptions(want)
	if want.ID() == arrow.TIMESTAMP && arr.DataType().ID() == arrow.TIMESTAMP {
		// Nanosecond timestamps (Spark's INT96 among them) lose their sub-microsecond
		// digits: Delta keeps microseconds.
		opts = compute.UnsafeCastOptions(want)
	}
	out, err := compute.CastArray(ctx, arr, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot convert %s to %s: %w", arr.DataType(), want, err)
	}
	return out, nil
}

// convertList converts a list or map array (same layout: validity, offsets, one child).
func convertList(ctx context.Context, mem memory.Allocator, a arrow.Array, want arrow.DataType) (arrow.Array, error) {
	var elem arrow.DataType
	switch w := want.(type) {
	case *arrow.MapType:
		elem = w.Elem()
	case *arrow.ListType:
		elem = w.Elem()
	default:
		return nil, fmt.Errorf("cannot convert %s to %s", a.DataType(), want)
	}
	d := a.Data()
	c := array.MakeFromData(d.Children()[0])
	defer c.Release()
	child, err := convertArray(ctx, mem, c, elem)
	if err != nil {
		return nil, err
	}
	defer child.Release()
	return rebuild(want, d, []arrow.ArrayData{child.Data()}), nil
}

// rebuild makes an array of type t from d's buffers (validity, offsets) and new children.
func rebuild(t arrow.DataType, d arrow.ArrayData, children []arrow.ArrayData) arrow.Array {
	nd := array.NewData(t, d.Len(), d.Buffers(), children, d.NullN(), d.Offset())
	defer nd.Release()
	return array.MakeFromData(nd)
}

func releaseData(ds []arrow.ArrayData) {
	for _, d := range ds {
		if d != nil {
			d.Release()
		}
	}
}

func stringsOf(mem memory.Allocator, a arrow.Array, value func(i int) string) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Reserve(a.Len())
	for i := range a.Len() {
		if a.IsNull(i) {
			b.AppendNull()
		} else {
			b.Append(value(i))
		}
	}
	return b.NewArray()
}

// appendTimeOfDay writes microseconds since midnight as HH:MM:SS, with a fraction of up to
// six digits when there is one (trailing zeros dropped).
func appendTimeOfDay(b []byte, us int64) []byte {
	neg := us < 0
	if neg {
		b = append(b, '-')
		us = -us
	}
	sec := us / 1e6
	h, m, s := sec/3600, sec/60%60, sec%60
	if h < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, h, 10)
	b = append(b, ':', byte('0'+m/10), byte('0'+m%10), ':', byte('0'+s/10), byte('0'+s%10))
	return appendFraction(b, us%1e6)
}

// appendFraction writes ".ffffff" for a nonzero count of microseconds, without trailing
// zeros.
func appendFraction(b []byte, us int64) []byte {
	if us == 0 {
		return b
	}
	var d [7]byte
	d[0] = '.'
	for i := 6; i >= 1; i-- {
		d[i] = byte('0' + us%10)
		us /= 10
	}
	n := 7
	for d[n-1] == '0' {
		n--
	}
	return append(b, d[:n]...)
}
