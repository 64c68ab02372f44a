package system_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehoused/lakehoused/internal/testdata"
)

// TestDeltaAcceptance attaches every Delta Acceptance Tests case and checks, through SQL, that
// each version listed in expected/ returns exactly the expected rows (as a multiset). Cases
// that need reader features lakehoused does not support must be refused with an error that
// names the feature.
func TestDeltaAcceptance(t *testing.T) {
	dat := filepath.Join(testdataDir(t), "dat")
	cases, err := os.ReadDir(dat)
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "")
	conn := n.conn("")
	mustExec(t, conn, "CREATE DATABASE dat")
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		name := c.Name()
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(dat, name)
			var meta struct {
				MinReader int `json:"min_reader_version"`
			}
			b, err := os.ReadFile(filepath.Join(dir, "expected", "latest", "table_version_metadata.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &meta); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			_, err = conn.ExecContext(ctx, fmt.Sprintf("CALL lake_attach('dat.%s', 'file://%s')", name, filepath.Join(dir, "delta")))
			if err == nil && meta.MinReader > 1 {
				_, err = readQuery(ctx, conn, fmt.Sprintf("SELECT * FROM dat.%s", name))
			}
			if err != nil {
				// Only tables that need reader features may be refused, and only with an
				// error that says what is unsupported.
				if meta.MinReader > 1 && strings.Contains(strings.ToLower(err.Error()), "support") {
					t.Logf("refused as allowed: %v", err)
					return
				}
				t.Fatalf("attach/read: %v", err)
			}
			versions, _ := filepath.Glob(filepath.Join(dir, "expected", "*"))
			for _, vdir := range versions {
				v := filepath.Base(vdir)
				q := fmt.Sprintf("SELECT * FROM dat.%s", name)
				if v != "latest" {
					q += " AS OF " + strings.TrimPrefix(v, "v")
				}
				got, err := readQuery(ctx, conn, q)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				want, cols := expectedRows(t, filepath.Join(vdir, "table_content"))
				gotRows := canonicalRows(got.rows, got.cols, cols)
				if strings.Join(gotRows, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s: %d rows differ from expected %d rows\ngot:\n%s\nwant:\n%s", q, len(gotRows), len(want),
						head(gotRows), head(want))
				}
			}
		})
	}
}

func head(rows []string) string {
	if len(rows) > 8 {
		rows = append(rows[:8:8], fmt.Sprintf("… %d more", len(rows)-8))
	}
	return strings.Join(rows, "\n")
}

type result struct {
	cols []string
	rows [][]any
}

func readQuery(ctx context.Context, c interface {
	QueryContext(context.Context, string, ...any) (*sqlRows, error)
}, q string) (*result, error) {
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return scanResult(rows)
}

// canonicalRows renders rows with columns in the expected order, sorted.
func canonicalRows(rows [][]any, have, want []string) []string {
	idx := make([]int, len(want))
	for i, w := range want {
		idx[i] = -1
		for j, h := range have {
			if strings.EqualFold(h, w) {
				idx[i] = j
			}
		}
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		parts := make([]string, len(want))
		for i, j := range idx {
			if j < 0 {
				parts[i] = "<missing column>"
				continue
			}
			parts[i] = testdata.Canonical(r[j])
		}
		out = append(out, strings.Join(parts, "|"))
	}
	sort.Strings(out)
	return out
}

// expectedRows reads the DAT expected Parquet files.
func expectedRows(t *testing.T, dir string) ([]string, []string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	var cols []string
	var rows [][]any
	for _, f := range files {
		rdr, err := file.OpenParquetFile(f, false)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		tr := array.NewTableReader(tbl, 1024)
		for tr.Next() {
			rec := tr.RecordBatch()
			if cols == nil {
				for _, fl := range rec.Schema().Fields() {
					cols = append(cols, fl.Name)
				}
			}
			for i := 0; i < int(rec.NumRows()); i++ {
				r := make([]any, rec.NumCols())
				for c := 0; c < int(rec.NumCols()); c++ {
					r[c] = arrowValue(rec.Column(c), i)
				}
				rows = append(rows, r)
			}
		}
		tr.Release()
		tbl.Release()
		rdr.Close()
	}
	if cols == nil {
		// An empty table: take the column names from a query instead; no rows to compare.
		return nil, nil
	}
	return canonicalRows(rows, cols, cols), cols
}

func arrowValue(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch x := a.(type) {
	case *array.Timestamp:
		return x.Value(i).ToTime(x.DataType().(*arrow.TimestampType).Unit)
	case *array.Date32:
		return x.Value(i).ToTime()
	case *array.Boolean:
		return x.Value(i)
	case *array.Float32:
		return x.Value(i)
	case *array.Float64:
		return x.Value(i)
	case *array.Binary:
		return string(x.Value(i))
	case *array.String:
		return x.Value(i)
	case *array.Decimal128:
		return x.ValueStr(i)
	case *array.Struct, *array.List, *array.Map:
		b, _ := json.Marshal(a.GetOneForMarshal(i))
		return string(b)
	}
	return a.ValueStr(i)
}
