package connector

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func openJSONGlob(t testing.TB, dir, pattern string, opt JSONOptions) (Source, error) {
	t.Helper()
	res := &Resolver{ImportDirs: []string{dir}}
	return OpenJSON(context.Background(), res, expand(t, res, "file://"+dir+"/"+pattern), opt)
}

func TestJSONRead(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		files map[string]string
		opt   JSONOptions
		types string
		rows  string
	}{
		{
			name: "lines and types",
			files: map[string]string{"a.jsonl": `{"b":true,"i":1,"f":1,"s":"x","o":{"k": [1, 2]},"n":null,"mix":1,"big":9223372036854775807}
{"b":false,"i":-20,"f":2.5,"s":"2024-01-02","o":[ ],"n":null,"mix":"y","big":1}

{"i":null,"f":1e3,"s":"","o":null,"mix":true}
`},
			types: "b boolean, i long, f double, s string, o string, n string, mix string, big long",
			rows:  `[[true 1 1 x {"k":[1,2]} NULL 1 9223372036854775807] [false -20 2.5 2024-01-02 [] NULL y 1] [NULL NULL 1000  NULL NULL true NULL]]`,
		},
		{
			name:  "integer too big for long is double",
			files: map[string]string{"a.jsonl": "{\"x\":9223372036854775808}\n{\"x\":1}"},
			types: "x double",
			rows:  "[[9.223372036854776e+18] [1]]",
		},
		{
			name:  "mixed with nested is JSON text",
			files: map[string]string{"a.jsonl": "{\"j\":{\"a\":1}}\n{\"j\":\"s\"}\n{\"j\":2.50}\n{\"j\":false}\n"},
			types: "j string",
			rows:  `[[{"a":1}] ["s"] [2.50] [false]]`,
		},
		{
			name:  "array pretty-printed, CRLF, BOM",
			files: map[string]string{"a.json": "\ufeff[\r\n  {\r\n    \"a\": 1,\r\n    \"b\": \"x\"\r\n  },\r\n  {\"b\": \"y\\\"}\", \"a\": 2}\r\n]\r\n"},
			types: "a long, b string",
			rows:  `[[1 x] [2 y"}]]`,
		},
		{
			name:  "empty array and empty file among others",
			files: map[string]string{"1.json": " [ ] ", "2.jsonl": "", "3.jsonl": `{"a":"z"}`},
			types: "a string",
			rows:  "[[z]]",
		},
		{
			name:  "escapes and unicode",
			files: map[string]string{"a.jsonl": `{"s":"tab\tnl\nq\"bs\\sl\/ \u00e9 \ud83d\ude00 \ud800 é 日本"}` + "\n" + "{\"s\":\"bad \xff byte\"}\n"},
			types: "s string",
			rows:  "[[tab\tnl\nq\"bs\\sl/ é 😀 \ufffd é 日本] [bad \ufffd byte]]",
		},
		{
			name:  "sample spans files; later files use the same columns",
			files: map[string]string{"1.jsonl": `{"a":1}`, "2.json": `[{"b":"x","a":2}]`, "3.jsonl": `{"b":"y"}`},
			opt:   JSONOptions{SampleRows: 2},
			types: "a long, b string",
			rows:  "[[1 NULL] [2 x] [NULL y]]",
		},
		{
			name:  "repeated key: last wins",
			files: map[string]string{"a.jsonl": `{"a":1,"a":2}`},
			types: "a long",
			rows:  "[[2]]",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, c.files)
			src, err := openJSONGlob(t, dir, "*", c.opt)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if got := typeNames(src.Fields()); got != c.types {
				t.Errorf("types %s, want %s", got, c.types)
			}
			if got := fmt.Sprint(drain(t, src)); got != c.rows {
				t.Errorf("rows\n got %s\nwant %s", got, c.rows)
			}
		})
	}
}

func TestJSONColumnMetadata(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.jsonl": `{"o":{"x":1},"s":"a"}`})
	src, err := openJSONGlob(t, dir, "*", JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f := src.Fields()
	if f[0].Metadata[MetaJSON] != true || f[0].Metadata[MetaMySQLType] != "json" || f[1].Metadata != nil {
		t.Errorf("metadata %v, %v", f[0].Metadata, f[1].Metadata)
	}
}

func TestJSONErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		content string
		opt     JSONOptions
		want    string // in the error of OpenJSON or of reading
	}{
		{"key after sample", "{\"a\":1}\n{\"a\":2}\n{\"a\":3,\"zz\":4}\n", JSONOptions{SampleRows: 2},
			`FILE line 3: key "zz" is not among the columns found in the first 2 records (a); raise sample_rows`},
		{"key after sample in array", "[{\"a\":1},\n{\"a\":2},\n {\"zz\":4}]", JSONOptions{SampleRows: 2},
			`FILE record 3 (line 3): key "zz" is not among the columns`},
		{"double in long column", "{\"a\":1}\n{\"a\":1.5}\n", JSONOptions{SampleRows: 1},
			`FILE line 2: key "a" holds 1.5, which does not fit column "a" of type long inferred from the first 1 records; raise sample_rows`},
		{"string in boolean column", "{\"a\":true}\n{\"a\":\"yes\"}\n", JSONOptions{SampleRows: 1},
			`FILE line 2: key "a" holds "yes", which does not fit column "a" of type boolean`},
		{"overflow in long column", "{\"a\":1}\n{\"a\":99999999999999999999}\n", JSONOptions{SampleRows: 1},
			`key "a" holds 99999999999999999999, which does not fit column "a" of type long`},
		{"syntax", "{\"a\":1}\n{\"a\": tru}\n", JSONOptions{},
			`FILE line 2 column 7: unexpected character 't' where a value should start`},
		{"syntax after sample", "{\"a\":1}\n{\"a\":1,}\n", JSONOptions{SampleRows: 1},
			`FILE line 2 column 8: expected a quoted key`},
		{"bad nested", "{\"a\":{\"x\":01}}\n", JSONOptions{},
			`FILE line 1 column 6: key "a": invalid character '1' after object key:value pair`},
		{"multi-line object in JSON lines", "{\"a\":1,\n\"b\":2}\n", JSONOptions{},
			`FILE line 1 column 8: unexpected end of the object (missing '}'); JSON lines need one whole object per line`},
		{"not an object in array", "[{\"a\":1}, 3]", JSONOptions{},
			`FILE record 2 (line 1): not a JSON object; read_json wants an array of objects`},
		{"array not closed", "[{\"a\":1},\n{\"a\":2}\n", JSONOptions{},
			`FILE line 3: the array is not closed (missing ']')`},
		{"array missing comma", "[{\"a\":1} {\"a\":2}]", JSONOptions{},
			`FILE line 1: expected ',' or ']' after record 1, found '{'`},
		{"neither", "a,b\n1,2\n", JSONOptions{},
			`FILE line 1 starts with 'a': read_json reads JSON lines (one object per line) or a JSON array of objects`},
		{"trailing text", "{\"a\":1} x\n", JSONOptions{},
			`FILE line 1 column 9: unexpected text after the object`},
		{"no keys", "{}\n{}\n", JSONOptions{}, `found no keys to make columns of in the first 2 records of FILE`},
		{"case clash", `{"id":1,"ID":2}`, JSONOptions{}, `keys "id" and "ID" differ only in case`},
		{"unterminated string", `{"a":"x}`, JSONOptions{}, `FILE line 1 column 9: unterminated string`},
		{"bad escape", `{"a":"\q"}`, JSONOptions{}, `FILE line 1 column 7: unknown escape \q`},
		{"bad compression", `{"a":1}`, JSONOptions{Compression: "gzip"}, `FILE: not a gzip stream`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"in.json": c.content})
			want := strings.ReplaceAll(c.want, "FILE", "file://"+dir+"/in.json")
			src, err := openJSONGlob(t, dir, "in.json", c.opt)
			if err == nil {
				defer src.Close()
				for err == nil {
					var rec interface{ Release() }
					rec, err = src.Next(context.Background())
					if err == nil {
						rec.Release()
					}
				}
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\nwant it to contain %q", err, want)
			}
		})
	}
}

func TestJSONCompressed(t *testing.T) {
	t.Parallel()
	var plain bytes.Buffer
	for i := range 100000 {
		fmt.Fprintf(&plain, "{\"i\":%d,\"s\":\"row %d\"}\n", i, i)
	}
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(plain.Bytes())
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain.Bytes())
	zw.Close()
	for _, c := range []struct {
		name, compression string
		data              []byte
	}{{"gzip auto", "", gz.Bytes()}, {"zstd auto", "auto", zs.Bytes()}, {"zstd named", "zstd", zs.Bytes()}, {"none", "none", plain.Bytes()}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"in.json.x": string(c.data)})
			src, err := openJSONGlob(t, dir, "in.json.x", JSONOptions{Compression: c.compression})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			rows := drain(t, src)
			if len(rows) != 100000 || rows[99999][0] != "99999" || rows[99999][1] != "row 99999" {
				t.Fatalf("%d rows, last %v", len(rows), rows[len(rows)-1])
			}
			p := src.Progress()
			if p.Rows != 100000 || p.Bytes != int64(len(c.data)) || p.TotalBytes != int64(len(c.data)) {
				t.Errorf("progress %+v, file of %d bytes", p, len(c.data))
			}
		})
	}
}

func TestJSONLongLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	long := strings.Repeat("é", 1<<20) // 2 MiB: longer than the read buffer
	writeFiles(t, dir, map[string]string{"a.jsonl": `{"s":"` + long + "\"}\n{\"s\":\"short\"}"})
	src, err := openJSONGlob(t, dir, "*", JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rows := drain(t, src)
	if len(rows) != 2 || rows[0][0] != long || rows[1][0] != "short" {
		t.Errorf("%d rows", len(rows))
	}
}

// BenchmarkJSONRead reads 1M JSON lines of 8 keys and reports rows/s.
func BenchmarkJSONRead(b *testing.B) {
	dir := b.TempDir()
	const n = 1 << 20
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, `{"id":%d,"qty":%d,"price":%d.%02d,"code":"k%d","descr":"a somewhat longer description of row %d","day":"2024-01-%02d","ok":%t,"tags":null}`+"\n",
			i*7919, i%1000, i%5000, i%100, i%5000, i, i%28+1, i%3 == 0)
	}
	writeFiles(b, dir, map[string]string{"bench.jsonl": buf.String()})
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		src, err := openJSONGlob(b, dir, "bench.jsonl", JSONOptions{})
		if err != nil {
			b.Fatal(err)
		}
		rows := 0
		for {
			rec, err := src.Next(context.Background())
			if err != nil {
				break
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
