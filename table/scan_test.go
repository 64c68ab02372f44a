package table

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehoused/lakehoused/txlog"
)

func TestScanProjection(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long", "name:string", "p:integer")
	rec := recordFromJSON(t, s, `[{"id":1,"name":"a","p":10},{"id":2,"name":null,"p":20}]`)
	defer rec.Release()
	st := newMemStore()
	adds := writeAll(t, st, s, []string{"p"}, WriterOptions{}, rec)
	tests := []struct {
		cols []string
		want []string
	}{
		{[]string{"NAME", "Id"}, []string{"NULL | 2", "a | 1"}},
		{[]string{"p"}, []string{"10", "20"}},
		{[]string{"p", "id", "p"}, []string{"10 | 1 | 10", "20 | 2 | 20"}},
		{[]string{"id", "ID"}, []string{"1 | 1", "2 | 2"}},
	}
	for _, tc := range tests {
		rows, sc := scanRows(t, st, s, []string{"p"}, adds, ScanOptions{Columns: tc.cols})
		equalRows(t, rows, tc.want)
		if sc.Schema().Field(0).Name != s.Fields[fieldIndex(s.Fields, tc.cols[0])].Name {
			t.Errorf("projected schema %s should use the table's spelling", sc.Schema())
		}
	}
	_, err := Scan(context.Background(), st, s, nil, adds, ScanOptions{Columns: []string{"qty"}})
	if err == nil || !strings.Contains(err.Error(), `"qty"`) || !strings.Contains(err.Error(), "id, name, p") {
		t.Fatalf("unknown column: err = %v", err)
	}
}

// TestScanSchemaEvolution reads a file written before ADD COLUMN (top level and inside a
// struct): the new columns read as NULL.
func TestScanSchemaEvolution(t *testing.T) {
	t.Parallel()
	old := mustSchema(t, `{"type":"struct","fields":[
	 {"name":"id","type":"long","nullable":true,"metadata":{}},
	 {"name":"st","type":{"type":"struct","fields":[{"name":"a","type":"long","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}}]}`)
	cur := mustSchema(t, `{"type":"struct","fields":[
	 {"name":"id","type":"long","nullable":true,"metadata":{}},
	 {"name":"st","type":{"type":"struct","fields":[{"name":"a","type":"long","nullable":true,"metadata":{}},{"name":"b","type":"string","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},
	 {"name":"added","type":"string","nullable":true,"metadata":{}}]}`)
	st := newMemStore()
	r1 := recordFromJSON(t, old, `[{"id":1,"st":{"a":5}},{"id":2,"st":null}]`)
	defer r1.Release()
	r2 := recordFromJSON(t, cur, `[{"id":3,"st":{"a":6,"b":"x"},"added":"new"}]`)
	defer r2.Release()
	adds := append(writeAll(t, st, old, nil, WriterOptions{}, r1), writeAll(t, st, cur, nil, WriterOptions{}, r2)...)
	rows, _ := scanRows(t, st, cur, nil, adds, ScanOptions{})
	equalRows(t, rows, []string{
		`1 | {"a":5,"b":null} | NULL`,
		`2 | NULL | NULL`,
		`3 | {"a":6,"b":"x"} | new`,
	})
	// Only columns the old file lacks: rows still come out, all NULL.
	rows, _ = scanRows(t, st, cur, nil, adds[:1], ScanOptions{Columns: []string{"added"}})
	equalRows(t, rows, []string{"NULL", "NULL"})
}

// TestScanOrderPrefetchAndClose checks file order with read-ahead, and that Close in the
// middle of a scan stops every goroutine and releases every buffer.
func TestScanOrderPrefetchAndClose(t *testing.T) {
	s := simpleSchema("id:long")
	st := newMemStore()
	var adds []*txlog.Add
	for i := range 8 {
		rec := recordFromJSON(t, s, `[{"id":`+itoa(i*10)+`},{"id":`+itoa(i*10+1)+`},{"id":`+itoa(i*10+2)+`}]`)
		adds = append(adds, writeAll(t, st, s, nil, WriterOptions{}, rec)...)
		rec.Release()
	}
	for _, prefetch := range []int{-1, 1, 2, 8} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		sc, err := Scan(context.Background(), st, s, nil, adds, ScanOptions{Prefetch: prefetch, BatchRows: 2, Allocator: mem})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for {
			rec, add, err := sc.Next()
			if err != nil {
				break
			}
			if add != adds[len(ids)/3] {
				t.Fatalf("prefetch %d: record of file %s arrived at position %d", prefetch, add.Path, len(ids))
			}
			ids = append(ids, rowStrings(rec)...)
			rec.Release()
		}
		if len(ids) != 24 || ids[0] != "0" || ids[23] != "72" {
			t.Fatalf("prefetch %d: rows out of order: %v", prefetch, ids)
		}
		sc.Close()
		mem.AssertSize(t, 0)
	}

	before := runtime.NumGoroutine()
	for range 5 {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		sc, err := Scan(context.Background(), st, s, nil, adds, ScanOptions{Prefetch: 3, BatchRows: 1, Allocator: mem})
		if err != nil {
			t.Fatal(err)
		}
		rec, _, err := sc.Next()
		if err != nil {
			t.Fatal(err)
		}
		rec.Release()
		time.Sleep(5 * time.Millisecond) // let the workers fill their buffers
		sc.Close()
		mem.AssertSize(t, 0)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Close, %d before", n, before)
	}
}

func TestScanMissingFileIsAnError(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long")
	sc, err := Scan(context.Background(), newMemStore(), s, nil, []*txlog.Add{{Path: "part-missing.parquet"}}, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, _, err := sc.Next(); err == nil || !strings.Contains(err.Error(), "part-missing.parquet") {
		t.Fatalf("err = %v, want one naming the file", err)
	}
}

func TestWriterScanNoLeaks(t *testing.T) {
	t.Parallel()
	s := mustSchema(t, allTypesSchema)
	rec := recordFromJSON(t, s, allTypesRows)
	defer rec.Release()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	st := newMemStore()
	adds := writeAll(t, st, s, []string{"s"}, WriterOptions{Allocator: mem, RowGroupRows: 1}, splitRecord(rec, 2)...)
	rows, _ := scanRows(t, st, s, []string{"s"}, adds, ScanOptions{Allocator: mem})
	if len(rows) != 3 {
		t.Fatalf("got %d rows", len(rows))
	}
	mem.AssertSize(t, 0)
}

// TestScanTypeWidening reads files written with narrower types (integer, float, byte)
// under a schema that widened them, as Delta's type widening allows.
func TestScanTypeWidening(t *testing.T) {
	t.Parallel()
	narrow := simpleSchema("a:integer", "b:float", "c:byte")
	wide := simpleSchema("a:long", "b:double", "c:integer")
	st := newMemStore()
	rec := recordFromJSON(t, narrow, `[{"a":2147483647,"b":0.5,"c":-128},{"a":null,"b":null,"c":null}]`)
	defer rec.Release()
	adds := writeAll(t, st, narrow, nil, WriterOptions{}, rec)
	rows, _ := scanRows(t, st, wide, nil, adds, ScanOptions{})
	equalRows(t, rows, []string{"2147483647 | 0.5 | -128", "NULL | NULL | NULL"})
}

// TestScanCanceledIsNotEOF checks that a scan whose context ends reports the
// cancellation instead of ending early as if the data were complete.
func TestScanCanceledIsNotEOF(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long")
	st := newMemStore()
	var adds []*txlog.Add
	for i := range 4 {
		rec := recordFromJSON(t, s, `[{"id":`+itoa(i)+`}]`)
		adds = append(adds, writeAll(t, st, s, nil, WriterOptions{}, rec)...)
		rec.Release()
	}
	ctx, cancel := context.WithCancel(context.Background())
	sc, err := Scan(ctx, st, s, nil, adds, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	rec, _, err := sc.Next()
	if err != nil {
		t.Fatal(err)
	}
	rec.Release()
	cancel()
	for {
		rec, _, err := sc.Next()
		if err == nil {
			rec.Release() // decoded before the cancel
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		break
	}
}
