package sql

import (
	"fmt"
	"testing"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"

	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

func testBuffer(t *testing.T, chunk int) *rowBuffer {
	t.Helper()
	sch := gms.Schema{{Name: "id", Type: types.Int64}, {Name: "s", Type: types.LongText, Nullable: true}}
	as, err := table.ArrowSchema(&txlog.Schema{Type: "struct", Fields: []txlog.StructField{
		{Name: "id", Type: txlog.DataType{Name: "long"}}, {Name: "s", Type: txlog.DataType{Name: "string"}, Nullable: true}}})
	if err != nil {
		t.Fatal(err)
	}
	b := newRowBuffer(sch, as)
	b.chunk = chunk
	return b
}

func fill(t *testing.T, b *rowBuffer, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		var s any = fmt.Sprintf("r%d", i)
		if i%4 == 0 {
			s = nil
		}
		if err := b.append(gms.Row{int64(i), s}); err != nil {
			t.Fatal(err)
		}
	}
}

// Rows keep their order and values across frozen batches, appends of other buffers and
// dead-row filtering.
func TestRowBuffer(t *testing.T) {
	t.Parallel()
	b := testBuffer(t, 3)
	fill(t, b, 0, 7) // two frozen batches and a tail of one
	o := testBuffer(t, 3)
	fill(t, o, 7, 12)
	if err := b.appendAll(o); err != nil {
		t.Fatal(err)
	}
	if b.len() != 12 || o.len() != 0 {
		t.Fatalf("len %d / %d", b.len(), o.len())
	}
	want := func(i int) string {
		if i%4 == 0 {
			return fmt.Sprintf("[%d <nil>]", i)
		}
		return fmt.Sprintf("[%d r%d]", i, i)
	}
	seen := 0
	err := b.each(func(i int, r gms.Row) error {
		if got := fmt.Sprint(r); got != want(i) || i != seen {
			t.Errorf("each row %d = %s, want %s", i, got, want(i))
		}
		seen++
		return nil
	})
	if err != nil || seen != 12 {
		t.Fatalf("each: %v, %d rows", err, seen)
	}
	for _, i := range []int{0, 2, 3, 6, 7, 11} {
		r, err := b.row(i)
		if err != nil || fmt.Sprint(r) != want(i) {
			t.Errorf("row(%d) = %v %v, want %s", i, r, err, want(i))
		}
	}
	dead := map[int]bool{1: true, 6: true, 7: true, 8: true}
	batches, release, err := b.batches(func(i int) bool { return dead[i] })
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, r := range release {
			r()
		}
	}()
	var ids []int64
	for _, bt := range batches {
		rows, err := recordRows(bt, b.readers(bt))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			ids = append(ids, r[0].(int64))
		}
	}
	if fmt.Sprint(ids) != "[0 2 3 4 5 9 10 11]" {
		t.Errorf("live ids %v", ids)
	}
}
