package connector

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehoused/lakehoused/txlog"
)

// recordsSource is a Source over fixed batches.
type recordsSource struct {
	fields []txlog.StructField
	schema *arrow.Schema
	recs   []arrow.RecordBatch
	next   int
}

func (s *recordsSource) Fields() []txlog.StructField { return s.fields }
func (s *recordsSource) Schema() *arrow.Schema       { return s.schema }
func (s *recordsSource) Progress() Progress          { return Progress{} }
func (s *recordsSource) Close() error                { return nil }
func (s *recordsSource) Next(context.Context) (arrow.RecordBatch, error) {
	if s.next >= len(s.recs) {
		return nil, io.EOF
	}
	s.next++
	r := s.recs[s.next-1]
	r.Retain()
	return r, nil
}

// newRecordsSource builds a source of the fields from JSON rows (arrow's RecordFromJSON
// forms: binary as base64, timestamps as microseconds in strings, maps as
// [{"key":…,"value":…}]), split into batches of batch rows.
func newRecordsSource(t testing.TB, fields []txlog.StructField, rowsJSON string, batch int) *recordsSource {
	t.Helper()
	sch, err := ArrowSchemaOf(fields)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sch, strings.NewReader(rowsJSON))
	if err != nil {
		t.Fatal(err)
	}
	s := &recordsSource{fields: fields, schema: sch}
	for from := int64(0); from < rec.NumRows(); from += int64(batch) {
		s.recs = append(s.recs, rec.NewSlice(from, min(rec.NumRows(), from+int64(batch))))
	}
	return s
}

func prim(name, typ string) txlog.StructField {
	return txlog.StructField{Name: name, Type: txlog.DataType{Name: typ}, Nullable: true}
}

// allTypesFields covers every Delta primitive type, a JSON column and the nested types.
func allTypesFields() []txlog.StructField {
	j := prim("j", "string")
	j.Metadata = map[string]any{MetaJSON: true, MetaMySQLType: "json"}
	return []txlog.StructField{
		prim("b", "boolean"), prim("i8", "byte"), prim("i16", "short"), prim("i32", "integer"), prim("i64", "long"),
		prim("f32", "float"), prim("f64", "double"), prim("dec", "decimal(12,2)"), prim("big", "decimal(38,10)"),
		prim("s", "string"), prim("bin", "binary"), prim("d", "date"), prim("ts", "timestamp"), prim("ntz", "timestamp_ntz"), j,
		{Name: "arr", Type: txlog.DataType{Array: &txlog.ArrayType{ElementType: txlog.DataType{Name: "long"}, ContainsNull: true}}, Nullable: true},
		{Name: "st", Type: txlog.DataType{Struct: &txlog.Schema{Type: "struct", Fields: []txlog.StructField{prim("x", "long"), prim("y", "string")}}}, Nullable: true},
		{Name: "m", Type: txlog.DataType{Map: &txlog.MapType{KeyType: txlog.DataType{Name: "string"}, ValueType: txlog.DataType{Name: "double"}, ValueContainsNull: true}}, Nullable: true},
	}
}

const allTypesRows = `[
{"b":true,"i8":-128,"i16":32767,"i32":-2147483648,"i64":9223372036854775807,"f32":1.5,"f64":0.1,"dec":"-1234567890.12","big":"1234567890123456789012345678.0123456789",
 "s":"héllo, \"wörld\"\n日本","bin":"AP8Q","d":"2024-02-29","ts":"1709296496789000","ntz":"-999999","j":"{\"a\": [1, 2], \"b\": null}",
 "arr":[1,null,3],"st":{"x":7,"y":"z"},"m":[{"key":"k1","value":2.5},{"key":"k,2","value":null}]},
{"b":null,"i8":null,"i16":null,"i32":null,"i64":null,"f32":null,"f64":null,"dec":null,"big":null,"s":null,"bin":null,"d":null,"ts":null,"ntz":null,"j":null,"arr":null,"st":null,"m":null},
{"b":false,"i8":0,"i16":0,"i32":0,"i64":-1,"f32":1e30,"f64":1e-7,"dec":"0.05","big":"-0.0000000001","s":"","bin":"","d":"0001-01-01","ts":"0","ntz":"253402300799999999","j":"\"just a string\"",
 "arr":[],"st":{"x":null,"y":null},"m":[]}
]`

func TestExportRoundTripParquet(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := &Resolver{ImportDirs: []string{dir}}
	src := newRecordsSource(t, allTypesFields(), allTypesRows, 2)
	url := "file://" + dir + "/out.parquet"
	r, err := Export(context.Background(), res, src, url, ExportOptions{Format: "parquet"})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, "out.parquet"))
	if r.Rows != 3 || len(r.Files) != 1 || r.Files[0] != url || st == nil || r.Bytes != st.Size() {
		t.Fatalf("result %+v", r)
	}
	back, err := OpenParquet(context.Background(), res, expand(t, res, url))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if got, want := typeNames(back.Fields()), typeNames(src.Fields()); got != want {
		t.Errorf("types read back:\n got %s\nwant %s", got, want)
	}
	if back.Fields()[14].Metadata[MetaJSON] != true {
		t.Errorf("JSON column lost its mark: %v", back.Fields()[14].Metadata)
	}
	src.next = 0
	if got, want := fmt.Sprint(drain(t, back)), fmt.Sprint(drain(t, src)); got != want {
		t.Errorf("rows read back:\n got %s\nwant %s", got, want)
	}
}

func TestExportCSV(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := &Resolver{ImportDirs: []string{dir}}
	fields := allTypesFields()
	fields[9].Name = `s "quoted", name`
	src := newRecordsSource(t, fields, strings.Replace(allTypesRows, `"s":`, `"s \"quoted\", name":`, -1), 2)
	if _, err := Export(context.Background(), res, src, "file://"+dir+"/out.csv", ExportOptions{Format: "csv"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := `b,i8,i16,i32,i64,f32,f64,dec,big,"s ""quoted"", name",bin,d,ts,ntz,j,arr,st,m
true,-128,32767,-2147483648,9223372036854775807,1.5,0.1,-1234567890.12,1234567890123456789012345678.0123456789,"héllo, ""wörld""
日本",00FF10,2024-02-29,2024-03-01 12:34:56.789,1969-12-31 23:59:59.000001,"{""a"": [1, 2], ""b"": null}","[1,null,3]","{""x"":7,""y"":""z""}","{""k1"":2.5,""k,2"":null}"
,,,,,,,,,,,,,,,,,
false,0,0,0,-1,1e+30,1e-7,0.05,-0.0000000001,"",,0001-01-01,1970-01-01 00:00:00,9999-12-31 23:59:59.999999,"""just a string""",[],"{""x"":null,""y"":null}",{}
`
	if string(got) != want {
		t.Errorf("CSV:\n%s\nwant:\n%s", got, want)
	}
}

func TestExportJSONLines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := &Resolver{ImportDirs: []string{dir}}
	src := newRecordsSource(t, allTypesFields(), allTypesRows, 2)
	url := "file://" + dir + "/out.json"
	if _, err := Export(context.Background(), res, src, url, ExportOptions{Format: "json"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b":true,"i8":-128,"i16":32767,"i32":-2147483648,"i64":9223372036854775807,"f32":1.5,"f64":0.1,"dec":-1234567890.12,"big":1234567890123456789012345678.0123456789,"s":"héllo, \"wörld\"\n日本","bin":"00FF10","d":"2024-02-29","ts":"2024-03-01 12:34:56.789","ntz":"1969-12-31 23:59:59.000001","j":{"a":[1,2],"b":null},"arr":[1,null,3],"st":{"x":7,"y":"z"},"m":{"k1":2.5,"k,2":null}}
{"b":null,"i8":null,"i16":null,"i32":null,"i64":null,"f32":null,"f64":null,"dec":null,"big":null,"s":null,"bin":null,"d":null,"ts":null,"ntz":null,"j":null,"arr":null,"st":null,"m":null}
{"b":false,"i8":0,"i16":0,"i32":0,"i64":-1,"f32":1e+30,"f64":1e-7,"dec":0.05,"big":-0.0000000001,"s":"","bin":"","d":"0001-01-01","ts":"1970-01-01 00:00:00","ntz":"9999-12-31 23:59:59.999999","j":"just a string","arr":[],"st":{"x":null,"y":null},"m":{}}
`
	if string(got) != want {
		t.Errorf("JSON lines:\n%s\nwant:\n%s", got, want)
	}
	back, err := OpenJSON(context.Background(), res, expand(t, res, url), JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	wantTypes := "b boolean, i8 long, i16 long, i32 long, i64 long, f32 double, f64 double, dec double, big double, s string, bin string, d string, ts string, ntz string, j string, arr string, st string, m string"
	if got := typeNames(back.Fields()); got != wantTypes {
		t.Errorf("types read back:\n got %s\nwant %s", got, wantTypes)
	}
	rows := drain(t, back)
	if len(rows) != 3 || rows[0][9] != "héllo, \"wörld\"\n日本" || rows[0][14] != `{"a":[1,2],"b":null}` || rows[2][14] != `"just a string"` || rows[1][4] != "NULL" {
		t.Errorf("rows read back: %q", rows)
	}
}

func TestExportParts(t *testing.T) {
	t.Parallel()
	fields := []txlog.StructField{prim("id", "long"), prim("s", "string")}
	var rows []string
	for i := range 20000 {
		rows = append(rows, fmt.Sprintf(`{"id":%d,"s":"row %d ü"}`, i, i))
	}
	rowsJSON := "[" + strings.Join(rows, ",") + "]"
	for _, format := range []string{"parquet", "csv", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			res := &Resolver{ImportDirs: []string{dir}}
			src := newRecordsSource(t, fields, rowsJSON, 500)
			url := "file://" + dir + "/out." + format
			r, err := Export(context.Background(), res, src, url, ExportOptions{Format: format, PartBytes: 8 << 10})
			if err != nil {
				t.Fatal(err)
			}
			if r.Rows != 20000 || len(r.Files) < 3 {
				t.Fatalf("result %d rows in %d files", r.Rows, len(r.Files))
			}
			var total int64
			for i, f := range r.Files {
				if want := fmt.Sprintf("%s/part-%05d.%s", url, i, format); f != want {
					t.Errorf("file %d is %s, want %s", i, f, want)
				}
				st, err := os.Stat(strings.TrimPrefix(f, "file://"))
				if err != nil {
					t.Fatal(err)
				}
				total += st.Size()
			}
			t.Logf("%d parts, %d bytes", len(r.Files), r.Bytes)
			if total != r.Bytes {
				t.Errorf("%d bytes in files, result says %d", total, r.Bytes)
			}
			// Every part reads back on its own, and together they hold every row in order.
			next := 0
			for _, f := range r.Files {
				var back Source
				switch format {
				case "parquet":
					back, err = OpenParquet(context.Background(), res, expand(t, res, f))
				case "json":
					back, err = OpenJSON(context.Background(), res, expand(t, res, f), JSONOptions{})
				case "csv":
					data, _ := os.ReadFile(strings.TrimPrefix(f, "file://"))
					lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
					if lines[0] != "id,s" {
						t.Fatalf("%s starts with %q", f, lines[0])
					}
					for _, l := range lines[1:] {
						if want := fmt.Sprintf("%d,row %d ü", next, next); l != want {
							t.Fatalf("%s: line %q, want %q", f, l, want)
						}
						next++
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, row := range drain(t, back) {
					if want := fmt.Sprint(next); row[0] != want {
						t.Fatalf("%s: id %s, want %s", f, row[0], want)
					}
					next++
				}
				back.Close()
			}
			if next != 20000 {
				t.Errorf("%d rows read back", next)
			}
		})
	}
}

func TestExportOnePartAndEmpty(t *testing.T) {
	t.Parallel()
	fields := []txlog.StructField{prim("id", "long"), prim("when", "date")}
	cases := []struct {
		format, rows string
		want         string // file content for text formats
	}{
		{"csv", `[]`, "id,when\n"},
		{"json", `[]`, ""},
		{"parquet", `[]`, ""},
		{"csv", `[{"id":1,"when":"2024-01-01"}]`, "id,when\n1,2024-01-01\n"},
		{"parquet", `[{"id":1,"when":"2024-01-01"}]`, ""},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %d", c.format, len(c.rows)), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			res := &Resolver{ImportDirs: []string{dir}}
			url := "file://" + dir + "/sub/out"
			r, err := Export(context.Background(), res, newRecordsSource(t, fields, c.rows, 10), url, ExportOptions{Format: c.format, PartBytes: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Files) != 1 || r.Files[0] != url {
				t.Fatalf("files %v", r.Files)
			}
			data, err := os.ReadFile(filepath.Join(dir, "sub/out"))
			if err != nil {
				t.Fatal(err)
			}
			if c.format != "parquet" {
				if string(data) != c.want {
					t.Errorf("content %q, want %q", data, c.want)
				}
				return
			}
			back, err := OpenParquet(context.Background(), res, expand(t, res, url))
			if err != nil {
				t.Fatal(err)
			}
			defer back.Close()
			if got := typeNames(back.Fields()); got != "id long, when date" {
				t.Errorf("types %s", got)
			}
			if n := len(drain(t, back)); int64(n) != r.Rows {
				t.Errorf("%d rows read back, %d written", n, r.Rows)
			}
		})
	}
}

func TestExportErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := &Resolver{ImportDirs: []string{dir}}
	fields := []txlog.StructField{prim("id", "long")}
	cases := []struct{ url, format, want string }{
		{"file://" + dir + "/x", "xml", `unknown format "xml"; use parquet, csv or json`},
		{"file:///elsewhere/x.csv", "csv", "outside the import directories"},
		{"http://example.com/x.csv", "csv", "exports go to file:// or s3:// URLs"},
	}
	for _, c := range cases {
		_, err := Export(context.Background(), res, newRecordsSource(t, fields, `[{"id":1}]`, 10), c.url, ExportOptions{Format: c.format})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: error %v, want %q", c.format, c.url, err, c.want)
		}
	}
}

func TestAppendText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		got, want string
	}{
		{string(appendFloat(nil, 100000000, 64)), "100000000"},
		{string(appendFloat(nil, 1e21, 64)), "1e+21"},
		{string(appendFloat(nil, 123456789012345680000, 64)), "123456789012345680000"},
		{string(appendFloat(nil, 0.000001, 64)), "0.000001"},
		{string(appendFloat(nil, 1.2e-7, 64)), "1.2e-7"},
		{string(appendFloat(nil, float64(float32(0.1)), 32)), "0.1"},
		{string(appendFloat(nil, -0.0, 64)), "0"},
		{string(appendDate(nil, 0)), "1970-01-01"},
		{string(appendDate(nil, -719162)), "0001-01-01"},
		{string(appendDate(nil, 2932896)), "9999-12-31"},
		{string(appendDate(nil, 11016)), "2000-02-29"},
		{string(appendTimestamp(nil, -1)), "1969-12-31 23:59:59.999999"},
		{string(appendTimestamp(nil, 1_700_000_000_120_000)), "2023-11-14 22:13:20.12"},
		{string(appendJSONString(nil, []byte("a\x01\"\\\t\xff€"))), `"a\u0001\"\\\t\ufffd€"`},
		{string(appendJSONDocument([]byte("x"), []byte("{not json"))), `x"{not json"`},
		{string(appendCSVField(nil, []byte(`a"b`))), `"a""b"`},
		{string(appendCSVField(nil, []byte("plain text"))), `plain text`},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
}

// BenchmarkExport writes 1M rows × 8 columns (the Parquet benchmark's) in each format,
// with the default part size, and reports rows/s.
func BenchmarkExport(b *testing.B) {
	const n = 1 << 20
	recs := benchRecords(b, n)
	fields := make([]txlog.StructField, 0, 8)
	for _, f := range recs[0].Schema().Fields() {
		dt, _, err := deltaTypeOf(f.Type)
		if err != nil {
			b.Fatal(err)
		}
		fields = append(fields, txlog.StructField{Name: f.Name, Type: dt, Nullable: true})
	}
	sch, err := ArrowSchemaOf(fields)
	if err != nil {
		b.Fatal(err)
	}
	for _, format := range []string{"parquet", "csv", "json"} {
		b.Run(format, func(b *testing.B) {
			dir := b.TempDir()
			res := &Resolver{ImportDirs: []string{dir}}
			start := time.Now()
			for range b.N {
				src := &recordsSource{fields: fields, schema: sch, recs: recs}
				r, err := Export(context.Background(), res, src, "file://"+dir+"/out."+format, ExportOptions{Format: format})
				if err != nil {
					b.Fatal(err)
				}
				if r.Rows != n {
					b.Fatalf("%d rows", r.Rows)
				}
			}
			b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "rows/s")
		})
	}
}
