package table

import (
	"context"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehoused/lakehoused/txlog"
)

// mustSchema parses a Delta schema given as compact "name type" pairs or full JSON.
func mustSchema(t testing.TB, js string) *txlog.Schema {
	t.Helper()
	s, err := txlog.ParseSchema(js)
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	return s
}

// simpleSchema builds a schema of nullable primitive columns from "name:type" pairs.
func simpleSchema(cols ...string) *txlog.Schema {
	s := &txlog.Schema{Type: "struct"}
	for _, c := range cols {
		name, typ, _ := strings.Cut(c, ":")
		s.Fields = append(s.Fields, txlog.StructField{Name: name, Type: txlog.DataType{Name: typ}, Nullable: true})
	}
	return s
}

// recordFromJSON builds a record of the table schema from JSON rows.
func recordFromJSON(t testing.TB, s *txlog.Schema, rows string) arrow.RecordBatch {
	t.Helper()
	as, err := ArrowSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, as, strings.NewReader(rows))
	if err != nil {
		t.Fatalf("record from JSON: %v", err)
	}
	return rec
}

// rowStrings renders every row of rec as one string, for multiset comparison.
func rowStrings(rec arrow.RecordBatch) []string {
	out := make([]string, rec.NumRows())
	for i := range out {
		var b strings.Builder
		for c := 0; c < int(rec.NumCols()); c++ {
			if c > 0 {
				b.WriteString(" | ")
			}
			col := rec.Column(c)
			if col.IsNull(i) {
				b.WriteString("NULL")
			} else {
				b.WriteString(col.ValueStr(i))
			}
		}
		out[i] = b.String()
	}
	return out
}

// writeAll writes recs through a new Writer and returns the adds.
func writeAll(t testing.TB, st *memStore, s *txlog.Schema, parts []string, opts WriterOptions, recs ...arrow.RecordBatch) []*txlog.Add {
	t.Helper()
	ctx := context.Background()
	w, err := NewWriter(st, s, parts, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	adds, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return adds
}

// scanRows scans files and returns the sorted row strings and the number of records.
func scanRows(t testing.TB, st *memStore, s *txlog.Schema, parts []string, files []*txlog.Add, opts ScanOptions) ([]string, *Scanner) {
	t.Helper()
	sc, err := Scan(context.Background(), st, s, parts, files, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	var rows []string
	for {
		rec, add, err := sc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if add == nil {
			t.Fatal("record without file")
		}
		if !rec.Schema().Equal(sc.Schema()) {
			t.Fatalf("record schema %s, scanner schema %s", rec.Schema(), sc.Schema())
		}
		rows = append(rows, rowStrings(rec)...)
		rec.Release()
	}
	sort.Strings(rows)
	return rows, sc
}

func sortedRows(recs ...arrow.RecordBatch) []string {
	var rows []string
	for _, r := range recs {
		rows = append(rows, rowStrings(r)...)
	}
	sort.Strings(rows)
	return rows
}

func equalRows(t testing.TB, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d\ngot:  %q\nwant: %q", len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("row %d:\ngot  %s\nwant %s", i, got[i], want[i])
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// splitRecord slices rec into records of at most n rows (caller releases them).
func splitRecord(rec arrow.RecordBatch, n int64) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for off := int64(0); off < rec.NumRows(); off += n {
		out = append(out, rec.NewSlice(off, min(off+n, rec.NumRows())))
	}
	return out
}

func (p *parsedStats) numRecords() int64 {
	if p.NumRecords == nil {
		return -1
	}
	return *p.NumRecords
}
