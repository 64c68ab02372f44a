package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/decimal256"
	"github.com/apache/arrow-go/v18/arrow/float16"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehoused/lakehoused/txlog"
)

// writeParquetFile writes the batches to path with pqarrow, rowGroup rows per row group.
func writeParquetFile(t testing.TB, path string, rowGroup int64, storeSchema bool, recs ...arrow.RecordBatch) {
	t.Helper()
	writeParquetProps(t, path, storeSchema, recs, parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(rowGroup))
}

func writeParquetProps(t testing.TB, path string, storeSchema bool, recs []arrow.RecordBatch, opts ...parquet.WriterProperty) {
	t.Helper()
	var buf bytes.Buffer
	props := parquet.NewWriterProperties(opts...)
	aprops := pqarrow.NewArrowWriterProperties()
	if storeSchema {
		aprops = pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())
	}
	w, err := pqarrow.NewFileWriter(recs[0].Schema(), &buf, props, aprops)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildRecord makes a one-column-per-array record.
func buildRecord(t testing.TB, names []string, cols ...arrow.Array) arrow.RecordBatch {
	t.Helper()
	fs := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fs[i] = arrow.Field{Name: names[i], Type: c.DataType(), Nullable: true}
	}
	return array.NewRecordBatch(arrow.NewSchema(fs, nil), cols, int64(cols[0].Len()))
}

func expand(t testing.TB, res *Resolver, pattern string) []Location {
	t.Helper()
	locs, err := res.Expand(context.Background(), pattern)
	if err != nil {
		t.Fatal(err)
	}
	return locs
}

// drain reads every batch of src and returns the rows as strings (one per value, via
// GetOneForMarshal), checking each batch's schema.
func drain(t testing.TB, src Source) [][]string {
	t.Helper()
	var rows [][]string
	for {
		rec, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Schema().Equal(src.Schema()) {
			t.Fatalf("batch schema %s differs from source schema %s", rec.Schema(), src.Schema())
		}
		if rec.NumRows() > BatchRows {
			t.Fatalf("batch of %d rows", rec.NumRows())
		}
		for i := range int(rec.NumRows()) {
			row := make([]string, rec.NumCols())
			for j, c := range rec.Columns() {
				row[j] = valueString(c, i)
			}
			rows = append(rows, row)
		}
		rec.Release()
	}
	return rows
}

func valueString(c arrow.Array, i int) string {
	if c.IsNull(i) {
		return "NULL"
	}
	switch a := c.(type) {
	case *array.Timestamp:
		return a.Value(i).ToTime(a.DataType().(*arrow.TimestampType).Unit).UTC().Format("2006-01-02 15:04:05.999999")
	case *array.Date32:
		return a.Value(i).FormattedString()
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Binary:
		return fmt.Sprintf("%x", a.Value(i))
	}
	switch c.DataType().(type) {
	case arrow.NestedType:
		b, err := json.Marshal(c.GetOneForMarshal(i))
		if err != nil {
			return err.Error()
		}
		return string(b)
	}
	return fmt.Sprint(c.GetOneForMarshal(i))
}

func typeNames(fs []txlog.StructField) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.Name+" "+typeString(f.Type))
	}
	return strings.Join(s, ", ")
}

func TestParquetTypes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mem := memory.DefaultAllocator
	var cols []arrow.Array
	var names []string
	add := func(name string, b array.Builder, fill func()) {
		fill()
		names = append(names, name)
		cols = append(cols, b.NewArray())
	}
	u8 := array.NewUint8Builder(mem)
	add("u8", u8, func() { u8.AppendValues([]uint8{255, 0}, []bool{true, false}) })
	u16 := array.NewUint16Builder(mem)
	add("u16", u16, func() { u16.AppendValues([]uint16{65535, 1}, nil) })
	u32 := array.NewUint32Builder(mem)
	add("u32", u32, func() { u32.AppendValues([]uint32{4294967295, 1}, nil) })
	u64 := array.NewUint64Builder(mem)
	add("u64", u64, func() { u64.AppendValues([]uint64{18446744073709551615, 1}, nil) })
	i8 := array.NewInt8Builder(mem)
	add("i8", i8, func() { i8.AppendValues([]int8{-128, 1}, nil) })
	f16 := array.NewFloat16Builder(mem)
	add("f16", f16, func() { f16.AppendValues([]float16.Num{float16.New(1.5), float16.New(-2)}, nil) })
	ls := array.NewLargeStringBuilder(mem)
	add("ls", ls, func() { ls.AppendValues([]string{"héllo", ""}, []bool{true, true}) })
	fsb := array.NewFixedSizeBinaryBuilder(mem, &arrow.FixedSizeBinaryType{ByteWidth: 2})
	add("fsb", fsb, func() { fsb.AppendValues([][]byte{{1, 2}, {3, 4}}, nil) })
	d64 := array.NewDate64Builder(mem)
	add("d64", d64, func() { d64.AppendValues([]arrow.Date64{86400000 * 365, -86400000}, nil) })
	tsms := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond})
	add("ts_ms", tsms, func() { tsms.AppendValues([]arrow.Timestamp{1700000000123, 0}, nil) })
	tsns := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "America/New_York"})
	add("ts_ns_tz", tsns, func() { tsns.AppendValues([]arrow.Timestamp{1700000000123456789, 1000}, nil) })
	d256 := array.NewDecimal256Builder(mem, &arrow.Decimal256Type{Precision: 50, Scale: 3})
	add("d256", d256, func() { d256.AppendValues([]decimal256.Num{decimal256.FromI64(-12345), decimal256.FromI64(7)}, nil) })
	d128 := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 12, Scale: 2})
	add("d128", d128, func() { d128.AppendValues([]decimal128.Num{decimal128.FromI64(123456), decimal128.FromI64(-1)}, nil) })
	t32 := array.NewTime32Builder(mem, &arrow.Time32Type{Unit: arrow.Millisecond})
	add("t32", t32, func() { t32.AppendValues([]arrow.Time32{(13*3600+5*60+7)*1000 + 250, 0}, nil) })
	t64 := array.NewTime64Builder(mem, &arrow.Time64Type{Unit: arrow.Nanosecond})
	add("t64", t64, func() { t64.AppendValues([]arrow.Time64{(23*3600+59*60+59)*1e9 + 123456789, 1e9}, nil) })
	dict := array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
	add("dict", dict, func() { dict.AppendString("a"); dict.AppendString("a") })
	lb := array.NewListBuilder(mem, arrow.PrimitiveTypes.Uint32)
	add("list_u32", lb, func() {
		lb.Append(true)
		lb.ValueBuilder().(*array.Uint32Builder).AppendValues([]uint32{1, 2}, nil)
		lb.AppendNull()
	})
	sb := array.NewStructBuilder(mem, arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Uint8, Nullable: true}, arrow.Field{Name: "y", Type: arrow.BinaryTypes.String, Nullable: false}))
	add("st", sb, func() {
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Uint8Builder).Append(9)
		sb.FieldBuilder(1).(*array.StringBuilder).Append("z")
		sb.AppendNull()
		sb.FieldBuilder(0).(*array.Uint8Builder).AppendNull()
		sb.FieldBuilder(1).(*array.StringBuilder).Append("")
	})
	mb := array.NewMapBuilder(mem, arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int16, false)
	add("m", mb, func() {
		mb.Append(true)
		mb.KeyBuilder().(*array.StringBuilder).Append("k")
		mb.ItemBuilder().(*array.Int16Builder).Append(3)
		mb.Append(true)
	})
	rec := buildRecord(t, names, cols...)
	path := filepath.Join(dir, "types.parquet")
	writeParquetFile(t, path, 1024, true, rec)

	res := &Resolver{ImportDirs: []string{dir}}
	src, err := OpenParquet(context.Background(), res, expand(t, res, "file://"+path))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	wantTypes := `u8 short, u16 integer, u32 long, u64 decimal(20,0), i8 byte, f16 float, ls string, fsb binary, d64 date, ts_ms timestamp_ntz, ts_ns_tz timestamp, d256 string, d128 decimal(12,2), t32 string, t64 string, dict string, list_u32 {"type":"array","elementType":"long","containsNull":true}, st {"type":"struct","fields":[{"name":"x","type":"short","nullable":true,"metadata":{}},{"name":"y","type":"string","nullable":true,"metadata":{}}]}, m {"type":"map","keyType":"string","valueType":"short","valueContainsNull":true}`
	if got := typeNames(src.Fields()); got != wantTypes {
		t.Errorf("types:\n got %s\nwant %s", got, wantTypes)
	}
	if got := src.Fields()[0].Metadata[MetaMySQLType]; got != "tinyint unsigned" {
		t.Errorf("u8 MySQL type %v", got)
	}
	rows := drain(t, src)
	want := [][]string{
		{"255", "65535", "4294967295", "18446744073709551615", "-128", "1.5", "héllo", "0102", "1971-01-01", "2023-11-14 22:13:20.123", "2023-11-14 22:13:20.123456", "-12.345", "1234.56", "13:05:07.25", "23:59:59.123456", "a", `[1,2]`, `{"x":9,"y":"z"}`, `[{"key":"k","value":3}]`},
		{"NULL", "1", "1", "1", "1", "-2", "", "0304", "1969-12-31", "1970-01-01 00:00:00", "1970-01-01 00:00:00.000001", "0.007", "-0.01", "00:00:00", "00:00:01", "a", "NULL", "NULL", "[]"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("rows:\n got %v\nwant %v", rows, want)
	}
	if p := src.Progress(); p.Rows != 2 || p.Bytes <= 0 || p.TotalBytes <= 0 {
		t.Errorf("progress %+v", p)
	}
}

// int64Record makes a record of columns a (int64) and b (string) holding from..to-1.
func int64Record(t testing.TB, from, to int) arrow.RecordBatch {
	mem := memory.DefaultAllocator
	ib := array.NewInt64Builder(mem)
	sb := array.NewStringBuilder(mem)
	for i := from; i < to; i++ {
		ib.Append(int64(i))
		sb.Append(fmt.Sprint("s", i))
	}
	return buildRecord(t, []string{"a", "b"}, ib.NewArray(), sb.NewArray())
}

func TestParquetManyFilesAndRowGroups(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// 3 files; the first has row groups of 30000 rows over 100000 rows so batches
	// never span row groups; the third is empty (no row groups).
	writeParquetFile(t, filepath.Join(dir, "p1.parquet"), 30000, false, int64Record(t, 0, 100000))
	writeParquetFile(t, filepath.Join(dir, "p2.parquet"), 1<<20, false, int64Record(t, 100000, 170000))
	writeParquetFile(t, filepath.Join(dir, "p3.parquet"), 1<<20, false, int64Record(t, 0, 0))
	res := &Resolver{ImportDirs: []string{dir}}
	locs := expand(t, res, "file://"+dir+"/*.parquet")
	src, err := OpenParquet(context.Background(), res, locs)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var n, batches int
	next := 0
	for {
		rec, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		a := rec.Column(0).(*array.Int64)
		for i := range a.Len() {
			if a.Value(i) != int64(next) {
				t.Fatalf("row %d holds %d", next, a.Value(i))
			}
			next++
		}
		n += int(rec.NumRows())
		batches++
		rec.Release()
	}
	if n != 170000 || batches != 6 { // 4 row groups, then 65536 + 4464
		t.Errorf("%d rows in %d batches", n, batches)
	}
	var total int64
	for _, l := range locs {
		total += l.Size
	}
	if p := src.Progress(); p.Rows != 170000 || p.TotalBytes != total || p.Bytes <= 0 || p.Bytes > total {
		t.Errorf("progress %+v (total %d)", p, total)
	}
}

func TestParquetMismatch(t *testing.T) {
	t.Parallel()
	mem := memory.DefaultAllocator
	ib := func() arrow.Array { b := array.NewInt64Builder(mem); b.Append(1); return b.NewArray() }
	fb := func() arrow.Array { b := array.NewFloat64Builder(mem); b.Append(1); return b.NewArray() }
	sb := func() arrow.Array { b := array.NewStringBuilder(mem); b.Append("x"); return b.NewArray() }
	cases := []struct {
		name  string
		names []string
		cols  []arrow.Array
		want  string
	}{
		{"type", []string{"a", "b"}, []arrow.Array{fb(), sb()}, `column "a" is double in file://DIR/b.parquet but long in a.parquet`},
		{"name", []string{"a", "c"}, []arrow.Array{ib(), sb()}, `column 2 of file://DIR/b.parquet is "c" but "b" in a.parquet`},
		{"extra", []string{"a", "b", "c"}, []arrow.Array{ib(), sb(), sb()}, `file://DIR/b.parquet has column "c", which a.parquet lacks`},
		{"missing", []string{"a"}, []arrow.Array{ib()}, `file://DIR/b.parquet lacks column "b", which a.parquet has`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeParquetFile(t, filepath.Join(dir, "a.parquet"), 100, false, buildRecord(t, []string{"a", "b"}, ib(), sb()))
			writeParquetFile(t, filepath.Join(dir, "b.parquet"), 100, false, buildRecord(t, c.names, c.cols...))
			res := &Resolver{ImportDirs: []string{dir}}
			src, err := OpenParquet(context.Background(), res, expand(t, res, "file://"+dir+"/*.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			rec, err := src.Next(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			rec.Release()
			_, err = src.Next(context.Background())
			want := strings.ReplaceAll(c.want, "DIR", dir)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v, want it to contain %q", err, want)
			}
			if _, again := src.Next(context.Background()); again != err {
				t.Errorf("Next after an error: %v", again)
			}
		})
	}
}

func TestParquetNotParquet(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "x.parquet")
	if err := os.WriteFile(p, []byte("a,b\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := &Resolver{ImportDirs: []string{dir}}
	_, err := OpenParquet(context.Background(), res, expand(t, res, "file://"+p))
	if err == nil || !strings.Contains(err.Error(), "file://"+p+" is not a readable Parquet file") {
		t.Errorf("error %v", err)
	}
}

// benchRecords makes n rows of the 8 benchmark columns in batches of 65536.
func benchRecords(t testing.TB, n int) []arrow.RecordBatch {
	mem := memory.DefaultAllocator
	var out []arrow.RecordBatch
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for from := 0; from < n; from += BatchRows {
		to := min(n, from+BatchRows)
		i64 := array.NewInt64Builder(mem)
		i32 := array.NewInt32Builder(mem)
		f64 := array.NewFloat64Builder(mem)
		dec := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 12, Scale: 2})
		ss := array.NewStringBuilder(mem)
		ls := array.NewStringBuilder(mem)
		d32 := array.NewDate32Builder(mem)
		ts := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
		for i := from; i < to; i++ {
			i64.Append(int64(i) * 7919)
			i32.Append(int32(i % 100000))
			f64.Append(float64(i) * 0.37)
			dec.Append(decimal128.FromI64(int64(i%1000000) * 13))
			ss.Append(fmt.Sprintf("k%d", i%5000))
			ls.Append(fmt.Sprintf("a somewhat longer description of row number %d", i))
			d32.Append(arrow.Date32(19000 + i%3000))
			ts.Append(arrow.Timestamp(base + int64(i)*1000003))
		}
		out = append(out, buildRecord(t, []string{"id", "qty", "price", "amount", "code", "descr", "day", "at"},
			i64.NewArray(), i32.NewArray(), f64.NewArray(), dec.NewArray(), ss.NewArray(), ls.NewArray(), d32.NewArray(), ts.NewArray()))
	}
	return out
}

// BenchmarkParquetRead reads 2M rows × 8 columns (int64, int32, double, decimal(12,2),
// short string, long string, date32, timestamp) and reports rows/s, from a file written
// with pqarrow's defaults (dictionaries everywhere, decimals as fixed-length bytes) and
// from one written as table.Writer and Spark write them (dictionaries for strings only,
// decimals as integers), both zstd-compressed with row groups of 1M rows.
func BenchmarkParquetRead(b *testing.B) {
	dir := b.TempDir()
	const n = 2 << 20
	recs := benchRecords(b, n)
	common := []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(1 << 20)}
	writeParquetProps(b, filepath.Join(dir, "default.parquet"), false, recs, common...)
	writeParquetProps(b, filepath.Join(dir, "lake.parquet"), false, recs, append(common, parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryFor("code", true), parquet.WithDictionaryFor("descr", true), parquet.WithStoreDecimalAsInteger(true))...)
	res := &Resolver{ImportDirs: []string{dir}}
	for _, name := range []string{"default", "lake"} {
		b.Run(name, func(b *testing.B) {
			benchParquetRead(b, res, expand(b, res, "file://"+filepath.Join(dir, name+".parquet")), n)
		})
	}
}

func benchParquetRead(b *testing.B, res *Resolver, locs []Location, n int) {
	start := time.Now()
	for range b.N {
		src, err := OpenParquet(context.Background(), res, locs)
		if err != nil {
			b.Fatal(err)
		}
		rows := 0
		for {
			rec, err := src.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rows += int(rec.NumRows())
			rec.Release()
		}
		src.Close()
		if rows != n {
			b.Fatalf("%d rows", rows)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "rows/s")
}
