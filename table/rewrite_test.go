package table

import (
	"context"
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehoused/lakehoused/txlog"
)

// deleteWhere returns a DELETE fn that drops rows whose id (column 0) is in ids.
func deleteWhere(ids ...int64) func(arrow.RecordBatch) (arrow.RecordBatch, bool, error) {
	return func(rec arrow.RecordBatch) (arrow.RecordBatch, bool, error) {
		col := rec.Column(0).(*array.Int64)
		b := array.NewBooleanBuilder(memory.DefaultAllocator)
		defer b.Release()
		drop := false
		for i := 0; i < col.Len(); i++ {
			hit := slices.Contains(ids, col.Value(i))
			drop = drop || hit
			b.Append(!hit)
		}
		if !drop {
			return rec, false, nil
		}
		mask := b.NewBooleanArray()
		defer mask.Release()
		out, err := compute.FilterRecordBatch(context.Background(), rec, mask, compute.DefaultFilterOptions())
		if err != nil {
			return nil, false, err
		}
		if out.NumRows() == 0 {
			out.Release()
			return nil, true, nil
		}
		return out, true, nil
	}
}

func liveFiles(files []*txlog.Add, adds []*txlog.Add, removes []*txlog.Remove) []*txlog.Add {
	var out []*txlog.Add
	for _, f := range files {
		if !slices.ContainsFunc(removes, func(r *txlog.Remove) bool { return r.Path == f.Path }) {
			out = append(out, f)
		}
	}
	return append(out, adds...)
}

func TestRewrite(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long", "v:string", "p:string")
	parts := []string{"p"}
	st := newMemStore()
	var files []*txlog.Add
	for _, rows := range []string{
		`[{"id":1,"v":"a","p":"x"},{"id":2,"v":"b","p":"x"}]`,
		`[{"id":3,"v":"c","p":"y"},{"id":4,"v":"d","p":"y"}]`,
		`[{"id":5,"v":"e","p":"x"}]`,
	} {
		rec := recordFromJSON(t, s, rows)
		files = append(files, writeAll(t, st, s, parts, WriterOptions{}, rec)...)
		rec.Release()
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	opts := WriterOptions{Now: func() time.Time { return now }}
	tests := []struct {
		name        string
		fn          func(arrow.RecordBatch) (arrow.RecordBatch, bool, error)
		wantRemoved []int // indexes into files
		wantAdds    int
		wantRows    []string
	}{
		{"delete one row", deleteWhere(2), []int{0}, 1,
			[]string{"1 | a | x", "3 | c | y", "4 | d | y", "5 | e | x"}},
		{"delete a whole file", deleteWhere(5), []int{2}, 0,
			[]string{"1 | a | x", "2 | b | x", "3 | c | y", "4 | d | y"}},
		{"delete nothing", deleteWhere(42), nil, 0,
			[]string{"1 | a | x", "2 | b | x", "3 | c | y", "4 | d | y", "5 | e | x"}},
		{"delete across files", deleteWhere(1, 4), []int{0, 1}, 2,
			[]string{"2 | b | x", "3 | c | y", "5 | e | x"}},
	}
	for _, tc := range tests {
		before := st.keys()
		adds, removes, err := Rewrite(context.Background(), st, s, parts, files, opts, tc.fn)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var removed []int
		for _, r := range removes {
			i := slices.IndexFunc(files, func(a *txlog.Add) bool { return a.Path == r.Path })
			removed = append(removed, i)
			if !r.DataChange || r.DeletionTimestamp == nil || *r.DeletionTimestamp != now.UnixMilli() {
				t.Errorf("%s: bad remove %+v", tc.name, r)
			}
		}
		sort.Ints(removed)
		if !slices.Equal(removed, tc.wantRemoved) || len(adds) != tc.wantAdds {
			t.Fatalf("%s: removed %v and added %d files, want %v and %d", tc.name, removed, len(adds), tc.wantRemoved, tc.wantAdds)
		}
		rows, _ := scanRows(t, st, s, parts, liveFiles(files, adds, removes), ScanOptions{})
		equalRows(t, rows, tc.wantRows)
		// Undo, as a failed commit would, so cases stay independent.
		for _, a := range adds {
			key, _ := addPathToKey(a.Path, st.URL())
			_ = st.Delete(context.Background(), key)
		}
		if !slices.Equal(st.keys(), before) {
			t.Fatalf("%s: store changed beyond the new files", tc.name)
		}
	}
}

func TestRewriteErrorLeavesNothing(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long")
	st := newMemStore()
	var files []*txlog.Add
	for i := range 3 {
		rec := recordFromJSON(t, s, `[{"id":`+itoa(i)+`}]`)
		files = append(files, writeAll(t, st, s, nil, WriterOptions{}, rec)...)
		rec.Release()
	}
	before := st.keys()
	calls := 0
	boom := errors.New("boom")
	adds, removes, err := Rewrite(context.Background(), st, s, nil, files, WriterOptions{TargetFileSize: 1},
		func(rec arrow.RecordBatch) (arrow.RecordBatch, bool, error) {
			calls++
			if calls == 3 {
				return nil, false, boom
			}
			rec.Retain() // a "new" record with the same rows
			out := array.NewRecordBatch(rec.Schema(), rec.Columns(), rec.NumRows())
			rec.Release()
			return out, true, nil
		})
	if !errors.Is(err, boom) || adds != nil || removes != nil {
		t.Fatalf("err = %v, adds %v, removes %v", err, adds, removes)
	}
	if !slices.Equal(st.keys(), before) {
		t.Fatalf("files left behind: before %v, after %v", before, st.keys())
	}
}
