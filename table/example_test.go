package table_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// Example shows the write path (batches in, add actions out) and the read path (prune the
// live files, then scan them) as sql/ and connectors/ use them. store is any storage.Store
// rooted at the table directory.
func Example() {
	ctx := context.Background()
	store := table.NewTestStore() // any storage.Store rooted at the table directory
	schema, _ := txlog.ParseSchema(`{"type":"struct","fields":[
	 {"name":"id","type":"long","nullable":false,"metadata":{}},
	 {"name":"region","type":"string","nullable":true,"metadata":{}}]}`)
	parts := []string{"region"}

	as, _ := table.ArrowSchema(schema)
	rec, _, _ := array.RecordFromJSON(memory.DefaultAllocator, as,
		strings.NewReader(`[{"id":1,"region":"eu"},{"id":2,"region":"us"},{"id":3,"region":"eu"}]`))
	defer rec.Release()

	w, _ := table.NewWriter(store, schema, parts, table.WriterOptions{})
	if err := w.Write(ctx, rec); err != nil {
		_ = w.Abort(ctx)
		return
	}
	adds, _ := w.Close(ctx) // commit these through txlog; on failure, w.Abort(ctx)
	fmt.Println(len(adds), "files")

	f := &table.Filter{Columns: []table.ColumnFilter{{Column: "region",
		Ranges: []table.Range{{Lo: table.Bound{Value: "eu", Inclusive: true}, Hi: table.Bound{Value: "eu", Inclusive: true}}}}}}
	live := table.PruneFiles(schema, parts, adds, f)
	sc, _ := table.Scan(ctx, store, schema, parts, live, table.ScanOptions{Columns: []string{"id"}, Filter: f})
	defer sc.Close()
	for {
		r, add, err := sc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		fmt.Println(add.PartitionValues["region"], r.Column(0))
		r.Release()
	}
	// Output:
	// 2 files
	// eu [1 3]
}
