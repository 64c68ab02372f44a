package table

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// idBatches builds batches of ascending ids with the given sizes.
func idBatches(t *testing.T, mem memory.Allocator, s *txlog.Schema, sizes ...int) []arrow.RecordBatch {
	t.Helper()
	as, err := ArrowSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	var out []arrow.RecordBatch
	next := int64(0)
	for _, n := range sizes {
		b := array.NewRecordBuilder(mem, as)
		for range n {
			b.Field(0).(*array.Int64Builder).Append(next)
			next++
		}
		out = append(out, b.NewRecordBatch())
		b.Release()
	}
	return out
}

func TestSplitRuns(t *testing.T) {
	t.Parallel()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	s := simpleSchema("id:long")
	batches := idBatches(t, mem, s, 10, 3, 7, 1)
	for _, n := range []int{1, 2, 3, 5} {
		runs := splitRuns(batches, 21, n)
		if len(runs) != n {
			t.Fatalf("n=%d: %d runs", n, len(runs))
		}
		next := int64(0)
		for i, run := range runs {
			rows := int64(0)
			for _, b := range run {
				ids := b.Column(0).(*array.Int64)
				for j := 0; j < ids.Len(); j++ {
					if ids.Value(j) != next {
						t.Fatalf("n=%d run %d: id %d, want %d", n, i, ids.Value(j), next)
					}
					next++
				}
				rows += b.NumRows()
				b.Release()
			}
			if want := (21 + int64(n) - 1) / int64(n); i < n-1 && rows != want {
				t.Errorf("n=%d run %d has %d rows, want %d", n, i, rows, want)
			}
		}
		if next != 21 {
			t.Fatalf("n=%d: %d rows in all", n, next)
		}
	}
	for _, b := range batches {
		b.Release()
	}
	mem.AssertSize(t, 0)
}

// TestWriteBatchesParallel: a large write is encoded by several writers at once, every row
// lands exactly once, files stay in input order (ids ascend across files), and the batches'
// memory is the caller's again afterwards.
func TestWriteBatchesParallel(t *testing.T) {
	t.Parallel()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	s := simpleSchema("id:long")
	const total = 3*parallelMinRows + 1234
	batches := idBatches(t, mem, s, 100000, parallelMinRows, 5, total-100000-parallelMinRows-5)
	st := newMemStore()
	adds, err := WriteBatches(context.Background(), st, s, nil, WriterOptions{}, batches)
	if err != nil {
		t.Fatal(err)
	}
	if len(adds) < 2 {
		t.Fatalf("%d files: the write was not split", len(adds))
	}
	var rows int64
	lastMax := int64(-1)
	for _, a := range adds {
		st, err := txlog.ParseStats(a.Stats)
		if err != nil {
			t.Fatal(err)
		}
		rows += st.NumRecords
		lo, _ := st.MinValues["id"].(json.Number).Int64()
		hi, _ := st.MaxValues["id"].(json.Number).Int64()
		if lo <= lastMax {
			t.Errorf("file %s starts at id %v, before the previous file's max %v", a.Path, lo, lastMax)
		}
		lastMax = hi
	}
	if rows != total {
		t.Fatalf("%d rows written, want %d", rows, total)
	}
	got, _ := scanRows(t, st, s, nil, adds, ScanOptions{})
	if len(got) != total {
		t.Fatalf("scanned %d rows", len(got))
	}
	for _, b := range batches {
		b.Release()
	}
	mem.AssertSize(t, 0)
}

// failAfter fails every Put after the first n.
type failAfter struct {
	storage.Store
	n int
}

func (f *failAfter) Put(ctx context.Context, key string, data []byte) error {
	if f.n <= 0 {
		return errors.New("disk full")
	}
	f.n--
	return f.Store.Put(ctx, key, data)
}

func TestWriteBatchesFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long")
	batches := idBatches(t, memory.DefaultAllocator, s, 2*parallelMinRows+10)
	defer batches[0].Release()
	st := newMemStore()
	_, err := WriteBatches(context.Background(), &failAfter{Store: st, n: 1}, s, nil, WriterOptions{}, batches)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want disk full", err)
	}
	if k := st.keys(); len(k) != 0 {
		t.Fatalf("files left after a failed write: %v", k)
	}
}

// TestSealStoresOnPut: sealed adds are final before their files exist; Put stores them and
// Abort removes them again.
func TestSealStoresOnPut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := simpleSchema("id:long", "p:string")
	rec := recordFromJSON(t, s, `[{"id":1,"p":"a"},{"id":2,"p":"b"},{"id":3,"p":"a"}]`)
	defer rec.Release()
	st := newMemStore()
	sealed, err := SealBatches(ctx, st, s, []string{"p"}, WriterOptions{}, []arrow.RecordBatch{rec})
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed.Adds) != 2 || len(st.keys()) != 0 {
		t.Fatalf("sealed: %d adds, stored %v", len(sealed.Adds), st.keys())
	}
	if err := sealed.Put(ctx); err != nil {
		t.Fatal(err)
	}
	rows, _ := scanRows(t, st, s, []string{"p"}, sealed.Adds, ScanOptions{})
	equalRows(t, rows, sortedRows(rec))
	for _, a := range sealed.Adds {
		data, err := st.Get(ctx, a.Path) // partition values here need no escaping
		if err != nil || int64(len(data)) != a.Size {
			t.Errorf("add %s: size %d, stored %d bytes (%v)", a.Path, a.Size, len(data), err)
		}
	}
	sealed.Abort(ctx)
	if k := st.keys(); len(k) != 0 {
		t.Fatalf("files left after Abort: %v", k)
	}
}
