package table

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/txlog"
)

const allTypesSchema = `{"type":"struct","fields":[
 {"name":"s","type":"string","nullable":true,"metadata":{}},
 {"name":"l","type":"long","nullable":true,"metadata":{}},
 {"name":"i","type":"integer","nullable":true,"metadata":{}},
 {"name":"sh","type":"short","nullable":true,"metadata":{}},
 {"name":"b","type":"byte","nullable":true,"metadata":{}},
 {"name":"f","type":"float","nullable":true,"metadata":{}},
 {"name":"d","type":"double","nullable":true,"metadata":{}},
 {"name":"bo","type":"boolean","nullable":true,"metadata":{}},
 {"name":"bin","type":"binary","nullable":true,"metadata":{}},
 {"name":"dt","type":"date","nullable":true,"metadata":{}},
 {"name":"ts","type":"timestamp","nullable":true,"metadata":{}},
 {"name":"tsn","type":"timestamp_ntz","nullable":true,"metadata":{}},
 {"name":"dec","type":"decimal(10,2)","nullable":true,"metadata":{}},
 {"name":"big","type":"decimal(38,18)","nullable":true,"metadata":{}},
 {"name":"st","type":{"type":"struct","fields":[{"name":"a","type":"long","nullable":true,"metadata":{}},{"name":"b","type":"string","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},
 {"name":"arr","type":{"type":"array","elementType":"integer","containsNull":true},"nullable":true,"metadata":{}},
 {"name":"m","type":{"type":"map","keyType":"string","valueType":"long","valueContainsNull":true},"nullable":true,"metadata":{}}
]}`

const allTypesRows = `[
 {"s":"hello","l":1,"i":2,"sh":3,"b":4,"f":1.5,"d":2.25,"bo":true,"bin":"AAEC","dt":"2026-11-26","ts":"2026-11-26T10:00:00.123456Z","tsn":"2026-11-26T10:00:00.5","dec":"12.34","big":"12345678901234567890.123456789012345678","st":{"a":7,"b":"x"},"arr":[1,null,3],"m":[{"key":"k","value":9}]},
 {"s":null,"l":null,"i":null,"sh":null,"b":null,"f":null,"d":null,"bo":null,"bin":null,"dt":null,"ts":null,"tsn":null,"dec":null,"big":null,"st":null,"arr":null,"m":null},
 {"s":"ünïcödé","l":-9223372036854775808,"i":-2147483648,"sh":-32768,"b":-128,"f":-0.5,"d":1e300,"bo":false,"bin":"","dt":"1900-01-01","ts":"1969-12-31T23:59:59.999999Z","tsn":"2100-01-01T00:00:00","dec":"-99999999.99","big":"-0.000000000000000001","st":{"a":null,"b":null},"arr":[],"m":[]}
]`

func TestRoundTripAllTypes(t *testing.T) {
	t.Parallel()
	s := mustSchema(t, allTypesSchema)
	rec := recordFromJSON(t, s, allTypesRows)
	defer rec.Release()
	st := newMemStore()
	adds := writeAll(t, st, s, nil, WriterOptions{}, rec)
	if len(adds) != 1 {
		t.Fatalf("got %d adds, want 1", len(adds))
	}
	a := adds[0]
	if !a.DataChange || a.Size <= 0 || !strings.HasPrefix(a.Path, "part-") || !strings.HasSuffix(a.Path, ".zstd.parquet") {
		t.Fatalf("unexpected add %+v", a)
	}
	rows, sc := scanRows(t, st, s, nil, adds, ScanOptions{})
	equalRows(t, rows, sortedRows(rec))
	if sc.FilesRead() != 1 {
		t.Fatalf("FilesRead = %d", sc.FilesRead())
	}
}

func TestPartitionedWrite(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long", "region:string", "day:date", "ts:timestamp")
	rec := recordFromJSON(t, s, `[
	 {"id":1,"region":"eu","day":"2026-11-26","ts":"2026-11-26T10:00:00Z"},
	 {"id":2,"region":"us","day":"2026-11-26","ts":"2026-11-26T10:00:00Z"},
	 {"id":3,"region":"eu","day":"2026-11-26","ts":"2026-11-26T10:00:00Z"},
	 {"id":4,"region":null,"day":"2026-11-27","ts":"2026-11-26T10:00:00Z"},
	 {"id":5,"region":"a/b=c%d e","day":"2026-11-27","ts":"2026-11-26T10:00:00Z"}
	]`)
	defer rec.Release()
	st := newMemStore()
	parts := []string{"region", "day"}
	adds := writeAll(t, st, s, parts, WriterOptions{}, rec)
	if len(adds) != 4 {
		t.Fatalf("got %d adds, want 4 (eu, us, NULL, escaped)", len(adds))
	}
	want := map[string]string{
		"eu":        "region=eu/day=2026-11-26/",
		"us":        "region=us/day=2026-11-26/",
		"":          "region=__HIVE_DEFAULT_PARTITION__/day=2026-11-27/",
		"a/b=c%d e": "region=a%2Fb%3Dc%25d e/day=2026-11-27/",
	}
	keys := st.keys()
	for _, a := range adds {
		region := a.PartitionValues["region"]
		dir, ok := want[region]
		if !ok {
			t.Fatalf("unexpected partition values %v", a.PartitionValues)
		}
		key, err := url.PathUnescape(a.Path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(key, dir) {
			t.Errorf("file %q (key %q) not under %q", a.Path, key, dir)
		}
		if strings.Contains(a.Path, " ") {
			t.Errorf("add.path %q is not URI-encoded", a.Path)
		}
		found := false
		for _, k := range keys {
			found = found || k == key
		}
		if !found {
			t.Errorf("add.path %q does not decode to a stored key; keys: %v", a.Path, keys)
		}
		if _, ok := a.PartitionValues["day"]; !ok || len(a.PartitionValues) != 2 {
			t.Errorf("partitionValues %v should name both partition columns", a.PartitionValues)
		}
	}
	rows, _ := scanRows(t, st, s, parts, adds, ScanOptions{})
	equalRows(t, rows, sortedRows(rec))
}

func TestPartitionValueFormats(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long", "ts:timestamp", "n:timestamp_ntz", "d:decimal(5,2)", "b:boolean", "x:double")
	rec := recordFromJSON(t, s, `[{"id":1,"ts":"2026-11-26T10:00:00.000001Z","n":"2026-11-26T10:00:00","d":"1.50","b":true,"x":0.25}]`)
	defer rec.Release()
	st := newMemStore()
	parts := []string{"ts", "n", "d", "b", "x"}
	adds := writeAll(t, st, s, parts, WriterOptions{}, rec)
	want := map[string]string{"ts": "2026-11-26T10:00:00.000001Z", "n": "2026-11-26 10:00:00.000000", "d": "1.50", "b": "true", "x": "0.25"}
	for k, v := range want {
		if got := adds[0].PartitionValues[k]; got != v {
			t.Errorf("partition value %s = %q, want %q", k, got, v)
		}
	}
	rows, _ := scanRows(t, st, s, parts, adds, ScanOptions{})
	equalRows(t, rows, sortedRows(rec))
}

func TestWriterRollsFilesAndRowGroups(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long", "v:string")
	var b strings.Builder
	b.WriteString("[")
	for i := range 5000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"id":` + itoa(i) + `,"v":"value-` + itoa(i*7919%10007) + `"}`)
	}
	b.WriteString("]")
	rec := recordFromJSON(t, s, b.String())
	defer rec.Release()
	st := newMemStore()
	var recs = splitRecord(rec, 500)
	adds := writeAll(t, st, s, nil, WriterOptions{TargetFileSize: 8 << 10, RowGroupRows: 1000}, recs...)
	for _, r := range recs {
		r.Release()
	}
	if len(adds) < 2 {
		t.Fatalf("got %d files, want several with an 8 KiB target", len(adds))
	}
	var total int64
	for _, a := range adds {
		total += parseStats(a.Stats).numRecords()
	}
	if total != 5000 {
		t.Fatalf("stats numRecords sum %d, want 5000", total)
	}
	rows, _ := scanRows(t, st, s, nil, adds, ScanOptions{BatchRows: 333})
	equalRows(t, rows, sortedRows(rec))
}

func TestWriterModificationTimeAndNotNull(t *testing.T) {
	t.Parallel()
	s := &txlog.Schema{Type: "struct", Fields: []txlog.StructField{{Name: "id", Type: txlog.DataType{Name: "long"}}}}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	st := newMemStore()
	w, err := NewWriter(st, s, nil, WriterOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ok := recordFromJSON(t, s, `[{"id":1}]`)
	defer ok.Release()
	if err := w.Write(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	adds, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if adds[0].ModificationTime != now.UnixMilli() {
		t.Fatalf("modificationTime %d, want %d", adds[0].ModificationTime, now.UnixMilli())
	}
	// A NULL in a NOT NULL column is refused with the column's name.
	s2 := simpleSchema("id:long")
	bad := recordFromJSON(t, s2, `[{"id":null}]`)
	defer bad.Release()
	w2, _ := NewWriter(st, s, nil, WriterOptions{})
	err = w2.Write(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), `"id"`) {
		t.Fatalf("NULL into NOT NULL column: err = %v", err)
	}
}

func TestAbortRemovesFiles(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long", "p:string")
	rec := recordFromJSON(t, s, `[{"id":1,"p":"a"},{"id":2,"p":"b"}]`)
	defer rec.Release()
	st := newMemStore()
	ctx := context.Background()
	w, err := NewWriter(st, s, []string{"p"}, WriterOptions{TargetFileSize: 1, RowGroupRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if len(st.keys()) == 0 {
		t.Fatal("expected rolled files before Close with a 1-byte target")
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if k := st.keys(); len(k) != 0 {
		t.Fatalf("files left after Abort: %v", k)
	}
	// Abort after a successful Close (commit failed) also removes the files.
	w, _ = NewWriter(st, s, []string{"p"}, WriterOptions{})
	_ = w.Write(ctx, rec)
	if _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(st.keys()) != 2 {
		t.Fatalf("want 2 files after Close, got %v", st.keys())
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if k := st.keys(); len(k) != 0 {
		t.Fatalf("files left after Abort: %v", k)
	}
}

func TestWriterRejectsWrongBatch(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long")
	other := simpleSchema("id:string")
	rec := recordFromJSON(t, other, `[{"id":"x"}]`)
	defer rec.Release()
	w, err := NewWriter(newMemStore(), s, nil, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), rec); err == nil {
		t.Fatal("batch with wrong column type accepted")
	}
	if _, err := NewWriter(newMemStore(), s, []string{"nope"}, WriterOptions{}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown partition column: err = %v", err)
	}
}
