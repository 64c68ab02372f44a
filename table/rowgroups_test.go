package table

import (
	"bytes"
	"context"
	"net/url"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"
)

// TestNoEmptyRowGroups checks that closing full row groups eagerly does not leave empty
// row groups behind, and that row groups hold at most RowGroupRows rows.
func TestNoEmptyRowGroups(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long")
	rows := "["
	for i := range 250 {
		if i > 0 {
			rows += ","
		}
		rows += `{"id":` + itoa(i) + `}`
	}
	rec := recordFromJSON(t, s, rows+"]")
	defer rec.Release()
	st := newMemStore()
	adds := writeAll(t, st, s, nil, WriterOptions{RowGroupRows: 50}, splitRecord(rec, 25)...)
	key, _ := url.PathUnescape(adds[0].Path)
	data, _ := st.Get(context.Background(), key)
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if pf.NumRowGroups() != 5 {
		t.Errorf("got %d row groups, want 5", pf.NumRowGroups())
	}
	for i := range pf.NumRowGroups() {
		if n := pf.MetaData().RowGroup(i).NumRows(); n == 0 || n > 50 {
			t.Errorf("row group %d has %d rows", i, n)
		}
	}
}
