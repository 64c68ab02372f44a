package connector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// openTestCSV writes files into a temp dir and opens pattern (relative to it) with opts.
func openTestCSV(t *testing.T, files map[string][]byte, pattern, opts string) (Source, string, error) {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := &Resolver{ImportDirs: []string{dir}}
	ctx := context.Background()
	locs, err := res.Expand(ctx, "file://"+filepath.ToSlash(filepath.Join(dir, pattern)))
	if err != nil {
		t.Fatal(err)
	}
	opt, err := ParseOptions(opts, CSVOptionKeys...)
	if err != nil {
		t.Fatal(err)
	}
	src, err := OpenCSV(ctx, res, locs, opt)
	return src, dir, err
}

// readAll reads every batch and renders each value as text ("NULL" for nulls).
func readAll(t *testing.T, src Source) ([][]string, error) {
	t.Helper()
	var rows [][]string
	for {
		rec, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		if !rec.Schema().Equal(src.Schema()) {
			t.Fatalf("batch schema %v differs from Schema() %v", rec.Schema(), src.Schema())
		}
		if rec.NumRows() > BatchRows {
			t.Fatalf("batch of %d rows", rec.NumRows())
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, rec.NumCols())
			for j, col := range rec.Columns() {
				row[j] = cellText(col, i)
			}
			rows = append(rows, row)
		}
		rec.Release()
	}
}

// schemaText renders the fields as "name delta/mysql".
func schemaText(src Source) string {
	var parts []string
	for _, f := range src.Fields() {
		s := f.Name + " " + f.Type.Name + "/" + f.Metadata[MetaMySQLType].(string)
		if f.Metadata[MetaJSON] == true {
			s += "/json"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func rowsText(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, "|"))
		b.WriteByte('\n')
	}
	return b.String()
}

type csvCase struct {
	name   string
	data   string
	opts   string
	schema string // "" to skip
	rows   string // rows joined by | and \n
	err    string // substring of the open or read error
}

func runCSVCases(t *testing.T, cases []csvCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src, _, err := openTestCSV(t, map[string][]byte{"data.csv": []byte(c.data)}, "data.csv", c.opts)
			var rows [][]string
			if err == nil {
				defer src.Close()
				rows, err = readAll(t, src)
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error = %v, want it to contain %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.schema != "" {
				if got := schemaText(src); got != c.schema {
					t.Errorf("schema:\n got %s\nwant %s", got, c.schema)
				}
			}
			if got := rowsText(rows); got != c.rows {
				t.Errorf("rows:\n got %q\nwant %q", got, c.rows)
			}
			if p := src.Progress(); p.Rows != int64(len(rows)) || p.Bytes != int64(len(c.data)) || p.TotalBytes != int64(len(c.data)) {
				t.Errorf("progress = %+v, want %d rows and %d bytes", p, len(rows), len(c.data))
			}
		})
	}
}

func TestCSVInference(t *testing.T) {
	t.Parallel()
	runCSVCases(t, []csvCase{{
		name: "all types",
		data: "b,i,d,day,ts,s,e,z\n" +
			"true,1,1.5,2024-02-29,2024-01-02 03:04:05,hello,,007\n" +
			"FALSE,-9223372036854775808,-2,1970-01-01,2024-01-02T03:04:05.25,,,010\n" +
			",9223372036854775807,1e3,,2024-01-02,\"x,y\",\"\",1\n",
		schema: "b boolean/tinyint(1), i long/bigint, d double/double, day date/date, ts timestamp/datetime(2), s string/text, e string/text, z string/text",
		rows: "true|1|1.5|2024-02-29|2024-01-02 03:04:05|hello|NULL|007\n" +
			"false|-9223372036854775808|-2|1970-01-01|2024-01-02 03:04:05.25|NULL|NULL|010\n" +
			"NULL|9223372036854775807|1000|NULL|2024-01-02 00:00:00|x,y||1\n",
	}, {
		name:   "integer too large for BIGINT is DOUBLE",
		data:   "n\n1\n9223372036854775808\n",
		schema: "n double/double",
		rows:   "1\n9.223372036854776e+18\n",
	}, {
		name:   "time zones convert to UTC",
		data:   "t\n2024-01-01T10:00:00Z\n2024-01-01 12:30:00+02:00\n2024-01-01 00:00:00.1234567-0130\n",
		schema: "t timestamp/datetime(6)",
		rows:   "2024-01-01 10:00:00\n2024-01-01 10:30:00\n2024-01-01 01:30:00.123456\n",
	}, {
		name:   "invalid dates are text",
		data:   "d\n2023-02-29\n2024-01-01\n",
		schema: "d string/text",
		rows:   "2023-02-29\n2024-01-01\n",
	}, {
		name:   "numeric first row is data",
		data:   "1,2\n3,4\n",
		schema: "column1 long/bigint, column2 long/bigint",
		rows:   "1|2\n3|4\n",
	}, {
		name:   "all-text file with distinct first row has a header",
		data:   "name,city\nann,oslo\nbob,rome\n",
		schema: "name string/text, city string/text",
		rows:   "ann|oslo\nbob|rome\n",
	}, {
		name:   "all-text file with repeated first row has none",
		data:   "x,x\nann,oslo\n",
		schema: "column1 string/text, column2 string/text",
		rows:   "x|x\nann|oslo\n",
	}, {
		name:   "header=false keeps a text first row",
		data:   "id,name\n1,a\n",
		opts:   "header=false",
		schema: "column1 string/text, column2 string/text",
		rows:   "id|name\n1|a\n",
	}, {
		name:   "header=true with numbers as names",
		data:   "2023,2024\n1,2\n",
		opts:   "header=true",
		schema: "2023 long/bigint, 2024 long/bigint",
		rows:   "1|2\n",
	}, {
		name:   "missing and duplicate header names",
		data:   "a,,A,a\n1,2,3,4\n",
		opts:   "header=true",
		schema: "a long/bigint, column2 long/bigint, A_2 long/bigint, a_3 long/bigint",
		rows:   "1|2|3|4\n",
	}, {
		name:   "empty file with header only",
		data:   "id,name\n",
		schema: "id string/text, name string/text",
		rows:   "",
	}, {
		name: "empty file",
		data: "",
		err:  "data.csv is empty; a file with no header line needs its columns given",
	}, {
		name:   "long values make LONGTEXT",
		data:   "s\n" + strings.Repeat("x", 70000) + "\n",
		schema: "s string/longtext",
		rows:   strings.Repeat("x", 70000) + "\n",
	}, {
		name: "later value not fitting the inferred type",
		data: "id,name\n1,a\n2,b\n3x,c\n",
		opts: "sample_rows=2",
		err:  `data.csv line 4, column "id": "3x" is not a valid BIGINT; the type was inferred from the first 2 rows; give the column types with columns='name TYPE, …' or set on_error=null`,
	}, {
		name: "on_error=null reads it as NULL",
		data: "id,name\n1,a\n2,b\n3x,c\n",
		opts: "sample_rows=2, on_error=null",
		rows: "1|a\n2|b\nNULL|c\n",
	}, {
		name: "invalid UTF-8",
		data: "id,name\n1,caf\xe9\n",
		err:  `data.csv line 2, column "name": "caf\xe9" is not valid UTF-8 text`,
	}})
}

func TestCSVDialect(t *testing.T) {
	t.Parallel()
	runCSVCases(t, []csvCase{{
		name: "quoted delimiters, doubled quotes and newlines",
		data: "id,text\n1,\"a,b\"\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n4,\"\"\"\"\n",
		rows: "1|a,b\n2|say \"hi\"\n3|two\nlines\n4|\"\n",
	}, {
		name: "BOM, CRLF and no final newline",
		data: "\xef\xbb\xbfid,name\r\n1,a\r\n2,\"b\r\nc\"\r\n3,d",
		rows: "1|a\n2|b\r\nc\n3|d\n", schema: "id long/bigint, name string/text",
	}, {
		name: "blank lines are skipped",
		data: "id,name\n1,a\n\n2,b\n\n\n",
		rows: "1|a\n2|b\n",
	}, {
		name: "lone CR line ends",
		data: "id,name\r1,a\r2,b\r",
		rows: "1|a\n2|b\n",
	}, {
		name: "trailing delimiter at end of file",
		data: "a,b,c\n1,2,",
		rows: "1|2|NULL\n",
	}, {
		name: "too few fields",
		data: "id,name\n1,\"x\ny\"\n2\n",
		err:  "data.csv line 4: 1 fields where ",
	}, {
		name: "too many fields",
		data: "id,name\n1,a\n2,b,c\n",
		err:  "data.csv line 3: 3 fields where ",
	}, {
		name: "unterminated quote",
		data: "id,name\n1,\"abc\n2,d\n",
		err:  "data.csv line 2: a quoted field is not closed by the end of the file",
	}, {
		name: "text after closing quote",
		data: "id,name\n1,\"ab\"c\n",
		err:  `data.csv line 2: unexpected 'c' after a closing quote`,
	}, {
		name: "tab delimiter",
		data: "id\tname\n1\ta,b\n",
		opts: `delimiter=\t`,
		rows: "1|a,b\n",
	}, {
		name: "multi-byte delimiter",
		data: "id||name\n1||a|b\n2||\"x||y\"\n",
		opts: "delimiter='||'",
		rows: "1|a|b\n2|x||y\n",
	}, {
		name: "semicolon delimiter, backslash escape",
		data: "id;name\n1;\"a\\\"b\"\n2;\"c\\\\\"\n",
		opts: `delimiter=;, escape=\`,
		rows: "1|a\"b\n2|c\\\n",
	}, {
		name: "single quote as quote",
		data: "id,name\n1,'a,b'\n",
		opts: `quote="'"`,
		rows: "1|a,b\n",
	}, {
		name: "quoting off",
		data: "id,name\n1,\"a\n",
		opts: "quote=''",
		rows: "1|\"a\n",
	}, {
		name: "null string",
		data: "id,name,n\n1,NA,NA\n2,,\n3,\"NA\",5\n",
		opts: "null=NA",
		rows: "1|NULL|NULL\n2||NULL\n3|NA|5\n",
	}, {
		name: "skip lines before the header",
		data: "exported 2024\nby someone\nid,name\n1,a\n",
		opts: "skip=2",
		rows: "1|a\n",
	}, {
		name: "spaces around numbers",
		data: "a,b\n 1 , 2.5\n",
		opts: "columns='a INT, b DOUBLE'",
		rows: "1|2.5\n",
	}})
}

func TestCSVColumns(t *testing.T) {
	t.Parallel()
	all := "columns='ti TINYINT, si SMALLINT UNSIGNED, i INT, bu BIGINT UNSIGNED, b BOOLEAN, f FLOAT, " +
		"dc DECIMAL(12,2), vc VARCHAR(5), c CHAR(2), tx TEXT, j JSON, vb VARBINARY(4), d DATE, dt DATETIME(3), ts TIMESTAMP'"
	runCSVCases(t, []csvCase{{
		name: "every type",
		data: "-128,65535,-2147483648,18446744073709551615,yes,1.5,1234567890.125,héllo,ab,t,{\"a\":1},abcd,2024-12-31,2024-12-31 23:59:59.123,2000-01-01 00:00:00\n" +
			",,,,,,,,,,,,,,\n",
		opts: all,
		schema: "ti byte/tinyint, si integer/smallint unsigned, i integer/int, bu decimal(20,0)/bigint unsigned, b boolean/tinyint(1), f float/float, " +
			"dc decimal(12,2)/decimal(12,2), vc string/varchar(5), c string/char(2), tx string/text, j string/json/json, vb binary/varbinary(4), d date/date, dt timestamp/datetime(3), ts timestamp/timestamp",
		rows: "-128|65535|-2147483648|18446744073709551615|true|1.5|1234567890.13|héllo|ab|t|{\"a\":1}|61626364|2024-12-31|2024-12-31 23:59:59.123|2000-01-01 00:00:00\n" +
			"NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL\n",
	}, {
		name: "header auto: names repeated",
		data: "name,city\nann,oslo\n",
		opts: "columns='name VARCHAR(10), city TEXT'",
		rows: "ann|oslo\n",
	}, {
		name: "header auto: text over a typed column",
		data: "n,s\n1,a\n",
		opts: "columns='id INT, s TEXT'",
		rows: "1|a\n", schema: "id integer/int, s string/text",
	}, {
		name: "header auto: all text and different names is data",
		data: "a,b\n",
		opts: "columns='x TEXT, y TEXT'",
		rows: "a|b\n",
	}, {
		name: "empty file with columns",
		data: "",
		opts: "columns='x INT'",
		rows: "", schema: "x integer/int",
	}, {
		name: "count mismatch",
		data: "1,2,3\n",
		opts: "columns='a INT, b INT'",
		err:  "data.csv line 1: 3 fields where the columns option has 2",
	}, {
		name: "VARCHAR overflow",
		data: "1,abcdef\n",
		opts: "columns='id INT, s VARCHAR(5)'",
		err:  `data.csv line 1, column "s": "abcdef" is longer than VARCHAR(5) (6 characters); give the column types`,
	}, {
		name: "VARCHAR counts characters, not bytes",
		data: "1,ééééé\n",
		opts: "columns='id INT, s VARCHAR(5)'",
		rows: "1|ééééé\n",
	}, {
		name: "VARCHAR overflow as NULL",
		data: "1,abcdef\n2,abc\n",
		opts: "columns='id INT, s VARCHAR(5)', on_error=null",
		rows: "1|NULL\n2|abc\n",
	}, {
		name: "TINYINT out of range",
		data: "x\n1\n128\n",
		opts: "columns='x TINYINT'",
		err:  `data.csv line 3, column "x": "128" is out of range for TINYINT`,
	}, {
		name: "unsigned negative",
		data: "-1\n",
		opts: "columns='x INT UNSIGNED'",
		err:  `"-1" is out of range for INT UNSIGNED`,
	}, {
		name: "BIGINT UNSIGNED past 2^64",
		data: "18446744073709551616\n",
		opts: "columns='x BIGINT UNSIGNED'",
		err:  `"18446744073709551616" is out of range for BIGINT UNSIGNED`,
	}, {
		name: "decimal rounding and precision",
		data: "0.005\n-9999999999.994\n-0.5\n",
		opts: "columns='x DECIMAL(12,2)'",
		rows: "0.01\n-9999999999.99\n-0.50\n",
	}, {
		name: "decimal too wide",
		data: "9999999999.995\n",
		opts: "columns='x DECIMAL(12,2)'",
		err:  `"9999999999.995" has too many digits for DECIMAL(12,2)`,
	}, {
		name: "wide decimal",
		data: "12345678901234567890123456.789\n",
		opts: "columns='x DECIMAL(38,10)'",
		rows: "12345678901234567890123456.7890000000\n",
	}, {
		name: "bad date",
		data: "2024-13-01\n",
		opts: "columns='d DATE', header=false",
		err:  `"2024-13-01" is not a valid DATE`,
	}, {
		name: "bad JSON",
		data: "{a}\n",
		opts: "columns='j JSON'",
		err:  `"{a}" is not a valid JSON document`,
	}, {
		name: "VARBINARY overflow",
		data: "abcde\n",
		opts: "columns='b VARBINARY(4)'",
		err:  `"abcde" is longer than VARBINARY(4) allows (5 bytes)`,
	}, {
		name: "unknown type",
		data: "1\n",
		opts: "columns='x MONEY'",
		err:  `columns: column "x": type "MONEY" is not known; types are TINYINT`,
	}, {
		name: "VARCHAR without length",
		data: "1\n",
		opts: "columns='x VARCHAR'",
		err:  `needs a length, e.g. VARCHAR(255)`,
	}, {
		name: "column without type",
		data: "1\n",
		opts: "columns='x'",
		err:  `columns: "x" has no type`,
	}, {
		name: "quoted names and spaced types",
		data: "1,2.5\n",
		opts: "columns='`my id` int unsigned, \"the value\" decimal (4, 1)'",
		rows: "1|2.5\n", schema: "my id long/int unsigned, the value decimal(4,1)/decimal(4,1)",
	}})
}

func TestCSVOptionErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ opts, err string }{
		{"header=maybe", `option header="maybe": want true or false (or auto)`},
		{"delimiter=''", "delimiter is empty"},
		{"quote=ab", "the quote is one character"},
		{"escape=ab", "the escape is one character"},
		{"sample_rows=0", "sample_rows=0: want 1 to"},
		{"skip=-1", "skip=-1"},
		{"on_error=skip", `on_error="skip": want error or null`},
		{"compression=lz4", `compression="lz4": want one of auto, none, gzip, zstd`},
	} {
		_, _, err := openTestCSV(t, map[string][]byte{"a.csv": []byte("x\n1\n")}, "a.csv", c.opts)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error = %v, want %q", c.opts, err, c.err)
		}
	}
	// Options not parsed against CSVOptionKeys are still checked.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("x\n"), 0o644)
	res := &Resolver{ImportDirs: []string{dir}}
	locs, err := res.Expand(context.Background(), filepath.Join(dir, "a.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCSV(context.Background(), res, locs, Options{"delim": ";"}); err == nil || !strings.Contains(err.Error(), `unknown option "delim"; known options are: header, delimiter`) {
		t.Errorf("unknown key: %v", err)
	}
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zstdBytes(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestCSVMultipleFiles(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{
		"part-1.csv":     []byte("id,name\n1,a\n2,b\n"),
		"part-2.csv.gz":  gzipBytes([]byte("id,name\n3,c\n")),
		"part-3.csv.zst": zstdBytes([]byte("\xef\xbb\xbfid,name\r\n4,d\r\n")),
		"part-4.csv":     []byte("id,name\n"),
	}
	var total int64
	for _, b := range files {
		total += int64(len(b))
	}
	src, _, err := openTestCSV(t, files, "part-*", "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if p := src.Progress(); p.TotalBytes != total || p.Rows != 0 {
		t.Errorf("progress before reading = %+v, want total %d", p, total)
	}
	rows, err := readAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rowsText(rows), "1|a\n2|b\n3|c\n4|d\n"; got != want {
		t.Errorf("rows = %q, want %q", got, want)
	}
	if p := src.Progress(); p.Rows != 4 || p.Bytes != total || p.TotalBytes != total {
		t.Errorf("progress = %+v, want 4 rows and %d bytes", p, total)
	}
	if err := src.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// A file with other columns is named in the error; so is a ragged one.
	for _, c := range []struct {
		second, err string
	}{
		{"id,title\n3,c\n", `b.csv line 1: column 2 is headed "title" where `},
		{"id,name\n3,c,x\n", `b.csv line 2: 3 fields where `},
		{"1,2\n", `b.csv line 1: column 1 is headed "1"`},
	} {
		src, _, err := openTestCSV(t, map[string][]byte{"a.csv": []byte("id,name\n1,a\n"), "b.csv": []byte(c.second)}, "*.csv", "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = readAll(t, src)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("error = %v, want %q", err, c.err)
		}
		if _, err2 := src.Next(context.Background()); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("Next after an error = %v, want the same error", err2)
		}
		src.Close()
	}
}

// TestCSVBatches reads more rows than fit one batch and records longer than the buffer
// reads, so records straddle reads, and checks every value.
func TestCSVBatches(t *testing.T) {
	t.Parallel()
	const n = 2*BatchRows + 123
	var b bytes.Buffer
	b.WriteString("id,label,when\n")
	long := strings.Repeat("z", 3000)
	for i := range n {
		if i%10000 == 7 {
			fmt.Fprintf(&b, "%d,\"%s\nq\"\"\",%s\n", i, long, time.Unix(int64(i)*61, 0).UTC().Format("2006-01-02 15:04:05"))
			continue
		}
		fmt.Fprintf(&b, "%d,n%d,%s\n", i, i, time.Unix(int64(i)*61, 0).UTC().Format("2006-01-02 15:04:05"))
	}
	src, _, err := openTestCSV(t, map[string][]byte{"big.csv.gz": gzipBytes(b.Bytes())}, "big.csv.gz", "sample_rows=100")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var sizes []int64
	row := 0
	for {
		rec, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, rec.NumRows())
		ids := rec.Column(0).(*array.Int64)
		labels := rec.Column(1).(*array.String)
		whens := rec.Column(2).(*array.Timestamp)
		for i := 0; i < int(rec.NumRows()); i, row = i+1, row+1 {
			want := fmt.Sprintf("n%d", row)
			if row%10000 == 7 {
				want = long + "\nq\""
			}
			if ids.Value(i) != int64(row) || labels.Value(i) != want || whens.Value(i) != arrow.Timestamp(int64(row)*61e6) {
				t.Fatalf("row %d = %d, %.10q, %d", row, ids.Value(i), labels.Value(i), whens.Value(i))
			}
		}
		rec.Release()
	}
	if !slices.Equal(sizes, []int64{BatchRows, BatchRows, 123}) {
		t.Errorf("batch sizes = %v", sizes)
	}
}

func TestCSVCancel(t *testing.T) {
	t.Parallel()
	src, _, err := openTestCSV(t, map[string][]byte{"a.csv": []byte("x\n1\n")}, "a.csv", "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next on a cancelled context = %v", err)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCSV reads 1M generated rows of eight typical columns from a temp file.
func BenchmarkCSV(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	path := filepath.Join(dir, "bench.csv")
	var buf bytes.Buffer
	buf.WriteString("id,qty,price,amount,code,descr,day,ts\n")
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		t := base.Add(time.Duration(i) * 7 * time.Second)
		fmt.Fprintf(&buf, "%d,%d,%.4f,%d.%02d,SKU-%d,\"customer number %d, order line\",%s,%s\n",
			1_000_000_000+i, i%1000, float64(i)*0.37, i%100000, i%100, i%5000, i, t.Format("2006-01-02"), t.Format("2006-01-02 15:04:05"))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	size := int64(buf.Len())
	res := &Resolver{ImportDirs: []string{dir}}
	ctx := context.Background()
	locs, err := res.Expand(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	opt, _ := ParseOptions("columns='id BIGINT, qty INT, price DOUBLE, amount DECIMAL(12,2), code VARCHAR(20), descr TEXT, day DATE, ts DATETIME'")
	for _, mode := range []struct {
		name string
		opt  Options
	}{{"given", opt}, {"inferred", Options{}}} {
		b.Run(mode.name, func(b *testing.B) {
			b.SetBytes(size)
			cpu0 := cpuTime()
			for b.Loop() {
				src, err := OpenCSV(ctx, res, locs, mode.opt)
				if err != nil {
					b.Fatal(err)
				}
				rows := 0
				for {
					rec, err := src.Next(ctx)
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
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			// CPU time (all threads, GC included) is steadier than wall time on a shared machine.
			b.ReportMetric(float64(n)*float64(b.N)/(cpuTime()-cpu0).Seconds(), "rows/cpu-s")
		})
	}
}

// BenchmarkCSVSplit measures the field splitter alone on the same rows as BenchmarkCSV.
func BenchmarkCSVSplit(b *testing.B) {
	var buf bytes.Buffer
	for i := range 100_000 {
		fmt.Fprintf(&buf, "%d,%d,%.4f,%d.%02d,SKU-%d,\"customer number %d, order line\",2024-01-01,2024-01-01 00:00:00\n",
			1_000_000_000+i, i%1000, float64(i)*0.37, i%100000, i%100, i%5000, i)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	var ch chunk
	for b.Loop() {
		s := newCSVScanner(csvDialect{delim: []byte{','}, quote: '"', hasQuote: true, esc: '"'}, make([]byte, len(data)))
		s.reset(bytes.NewReader(data), "bench")
		if err := s.fill(); err != nil {
			b.Fatal(err)
		}
		s.fill()
		for !s.done() {
			ch.reset()
			if err := s.split(&ch, chunkRows); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(100_000)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestCSVHeaderInEachFile: with header=true every file's first line is skipped, even when
// the first file is empty and the columns are given.
func TestCSVHeaderInEachFile(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{"a.csv": nil, "b.csv": []byte("x,y\n1,2\n"), "c.csv": []byte("x,y\n3,4\n")}
	src, _, err := openTestCSV(t, files, "*.csv", "header=true, columns='x INT, y INT'")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rows, err := readAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if got := rowsText(rows); got != "1|2\n3|4\n" {
		t.Errorf("rows = %q", got)
	}
}

// TestCSVNumberParsers checks the fast number paths against strconv and math/big.
func TestCSVNumberParsers(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		f := (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(30)-10))
		s := strconv.FormatFloat(f, 'f', rng.IntN(12)-1, 64)
		want, _ := strconv.ParseFloat(s, 64)
		if got, ok := parseFloat([]byte(s), 64); !ok || got != want {
			t.Fatalf("parseFloat(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "-", ".", "1e", "abc", "1.2.3", "--1"} {
		if _, ok := parseFloat([]byte(s), 64); ok {
			t.Errorf("parseFloat(%q) succeeded", s)
		}
	}
	for range 20000 {
		prec := int32(rng.IntN(38) + 1)
		scale := int32(rng.IntN(int(prec) + 1))
		intDigits := rng.IntN(int(prec-scale) + 2)
		var b strings.Builder
		if rng.IntN(2) == 0 {
			b.WriteByte('-')
		}
		for range intDigits {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		if intDigits == 0 {
			b.WriteByte('0')
		}
		if fd := rng.IntN(int(scale) + 3); fd > 0 {
			b.WriteByte('.')
			for range fd {
				b.WriteByte(byte('0' + rng.IntN(10)))
			}
		}
		s := b.String()
		r, _ := new(big.Rat).SetString(s)
		scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
		// Round half away from zero.
		num := new(big.Int).Abs(scaled.Num())
		q, m := new(big.Int).QuoRem(num, scaled.Denom(), new(big.Int))
		if new(big.Int).Mul(m, big.NewInt(2)).Cmp(scaled.Denom()) >= 0 {
			q.Add(q, big.NewInt(1))
		}
		if scaled.Sign() < 0 {
			q.Neg(q)
		}
		limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(prec)), nil)
		fits := new(big.Int).Abs(q).Cmp(limit) < 0
		got, ok := parseDecimal([]byte(s), prec, scale)
		if ok != fits || ok && got.BigInt().Cmp(q) != 0 {
			t.Fatalf("parseDecimal(%q, %d, %d) = %v, %v; want %v, %v", s, prec, scale, got.BigInt(), ok, q, fits)
		}
	}
}

func TestCSVDateParsers(t *testing.T) {
	t.Parallel()
	var c dayCache
	for d := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2500; d = d.AddDate(0, 0, 3) {
		s := d.Format("2006-01-02")
		for _, cache := range []*dayCache{nil, &c, &c} {
			got, ok := parseDate([]byte(s), cache)
			if !ok || int64(got) != d.Unix()/86400 {
				t.Fatalf("parseDate(%q) = %d, %v; want %d", s, got, ok, d.Unix()/86400)
			}
		}
		ts := d.Add(time.Duration(d.Unix()%86400000) * time.Millisecond).Format("2006-01-02 15:04:05.000")
		want, _ := time.Parse("2006-01-02 15:04:05.000", ts)
		if got, frac, ok := parseTimestamp([]byte(ts), &c); !ok || frac != 3 || got != want.UnixMicro() {
			t.Fatalf("parseTimestamp(%q) = %d, %d, %v; want %d", ts, got, frac, ok, want.UnixMicro())
		}
	}
	for _, s := range []string{"2024-02-30", "2023-02-29", "1900-02-29", "2024-00-10", "2024-1-10", "2024/01/10", "2024-01-10x"} {
		if _, ok := parseDate([]byte(s), &c); ok {
			t.Errorf("parseDate(%q) succeeded", s)
		}
	}
	for _, s := range []string{"2024-01-01 24:00:00", "2024-01-01 10:60", "2024-01-01T10:00:00.", "2024-01-01 10:00:00+5", "2024-01-01 10:00:00 UTC"} {
		if _, _, ok := parseTimestamp([]byte(s), nil); ok {
			t.Errorf("parseTimestamp(%q) succeeded", s)
		}
	}
}

// TestCSVLongRecord: a stray quote makes the rest of a big file one record, which is
// refused once it passes the limit instead of filling memory.
func TestCSVLongRecord(t *testing.T) {
	t.Parallel()
	data := []byte("1,\"abc\n" + strings.Repeat("2,def\n", 2<<20))
	s := newCSVScanner(csvDialect{delim: []byte{','}, quote: '"', hasQuote: true, esc: '"'}, make([]byte, 2*csvReadSize))
	s.maxRec = 4 << 20
	s.reset(bytes.NewReader(data), "big.csv")
	var ch chunk
	var err error
	for err == nil && !s.done() {
		ch.reset()
		if err = s.split(&ch, chunkRows); err == nil && ch.records() == 0 {
			err = s.fill()
		}
	}
	if err == nil || !strings.Contains(err.Error(), "big.csv line 1: a row longer than 4 MB; check that quotes are balanced") {
		t.Errorf("error = %v", err)
	}
}
