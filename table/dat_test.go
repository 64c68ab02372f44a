package table

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/lakehoused/lakehoused/internal/testdata"
	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// dirStore is a read-only storage.Store over a local directory, enough to scan DAT tables.
type dirStore struct{ root string }

func (d dirStore) path(key string) string { return filepath.Join(d.root, filepath.FromSlash(key)) }
func (d dirStore) Get(_ context.Context, key string) ([]byte, error) {
	return os.ReadFile(d.path(key))
}
func (d dirStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b, err := d.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return b[off:min(int64(len(b)), off+n)], nil
}
func (d dirStore) Open(_ context.Context, key string) (storage.ReaderAtCloser, int64, error) {
	f, err := os.Open(d.path(key))
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}
func (dirStore) Put(context.Context, string, []byte) error         { return fmt.Errorf("read-only") }
func (dirStore) PutIfAbsent(context.Context, string, []byte) error { return fmt.Errorf("read-only") }
func (dirStore) List(context.Context, string) ([]storage.ObjectInfo, error) {
	return nil, fmt.Errorf("not needed")
}
func (dirStore) Delete(context.Context, string) error { return fmt.Errorf("read-only") }
func (d dirStore) Stat(_ context.Context, key string) (storage.ObjectInfo, error) {
	st, err := os.Stat(d.path(key))
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	return storage.ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}
func (d dirStore) URL() string { return "file://" + d.root }

// datLog is the little log replay this test needs: the last metaData and protocol, and
// the live adds from the JSON commits (the real replay lives in txlog).
type datLog struct {
	schema   *txlog.Schema
	parts    []string
	protocol txlog.Protocol
	adds     []*txlog.Add
	complete bool   // every version from 0 has a JSON commit
	mapping  string // delta.columnMapping.mode
}

func readDatLog(t *testing.T, logDir string) datLog {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(logDir, "*.json"))
	sort.Strings(names)
	var l datLog
	l.complete = len(names) > 0 && strings.HasSuffix(names[0], "00000000000000000000.json")
	live := map[string]*txlog.Add{}
	var order []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			var a txlog.Action
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			switch {
			case a.MetaData != nil:
				s, err := txlog.ParseSchema(a.MetaData.SchemaString)
				if err != nil {
					t.Fatal(err)
				}
				l.schema, l.parts = s, a.MetaData.PartitionColumns
				l.mapping = a.MetaData.Configuration["delta.columnMapping.mode"]
			case a.Protocol != nil:
				l.protocol = *a.Protocol
			case a.Add != nil:
				k := fileKey(a.Add.Path, a.Add.DeletionVector)
				if _, ok := live[k]; !ok {
					order = append(order, k)
				}
				live[k] = a.Add
			case a.Remove != nil:
				delete(live, fileKey(a.Remove.Path, a.Remove.DeletionVector))
			}
		}
	}
	for _, p := range order {
		if a, ok := live[p]; ok {
			l.adds = append(l.adds, a)
		}
	}
	return l
}

// fileKey is the replay key of a file action: its path and deletion vector id.
func fileKey(path string, dv *txlog.DeletionVector) string {
	if dv == nil {
		return path
	}
	off := ""
	if dv.Offset != nil {
		off = fmt.Sprintf("@%d", *dv.Offset)
	}
	return path + "\x00" + dv.StorageType + dv.PathOrInlineDv + off
}

// readExpected reads expected/latest/table_content/*.parquet and conforms the columns to
// the table's Arrow types, returning row strings in the table's column order.
func readExpected(t *testing.T, dir string, out *arrow.Schema) []string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	var rows []string
	ctx := context.Background()
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := file.NewParquetReader(f)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tr := array.NewTableReader(tbl, 1024)
		for tr.Next() {
			rec := tr.RecordBatch()
			cols := make([]arrow.Array, out.NumFields())
			for i, fld := range out.Fields() {
				j := arrowFieldIndex(rec.Schema().Fields(), fld.Name)
				if j < 0 {
					t.Fatalf("%s: expected rows lack column %q", n, fld.Name)
				}
				c, err := conform(ctx, memory.DefaultAllocator, rec.Column(j), fld.Type)
				if err != nil {
					t.Fatalf("%s column %s: %v", n, fld.Name, err)
				}
				cols[i] = c
			}
			r := array.NewRecordBatch(out, cols, rec.NumRows())
			rows = append(rows, rowStrings(r)...)
			r.Release()
			for _, c := range cols {
				c.Release()
			}
		}
		tr.Release()
		tbl.Release()
		pf.Close()
	}
	sort.Strings(rows)
	return rows
}

// TestDATReadCompatibility scans every DAT table written by Spark that this layer can read
// — protocol (1,2) and (1,4), and reader 3 with timestampNtz — and compares its rows with
// the expected rows as a multiset. Tables whose files carry deletion vectors must be
// refused with a clear error. Skipped: column-mapping tables (reader 2, rejected by txlog)
// and no_replay, whose early history exists only in a checkpoint (reading checkpoints is
// txlog's job).
func TestDATReadCompatibility(t *testing.T) {
	t.Parallel()
	root := testdata.DAT(t)
	cases, _ := os.ReadDir(root)
	ran := 0
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		name := c.Name()
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := readDatLog(t, filepath.Join(root, name, "delta", "_delta_log"))
			if !l.complete {
				t.Skip("history starts at a checkpoint; reading checkpoints is txlog's job")
			}
			if !datReadable(l) {
				t.Skipf("protocol %+v with column mapping %q: txlog rejects column mapping before a scan", l.protocol, l.mapping)
			}
			hasDV := false
			for _, a := range l.adds {
				hasDV = hasDV || a.DeletionVector != nil
			}
			store := dirStore{root: filepath.Join(root, name, "delta")}
			sc, err := Scan(context.Background(), store, l.schema, l.parts, l.adds, ScanOptions{BatchRows: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			var got []string
			for {
				rec, _, err := sc.Next()
				if err != nil {
					if errors.Is(err, io.EOF) {
						break
					}
					if hasDV && strings.Contains(err.Error(), "deletion vector") {
						return // refused clearly instead of returning deleted rows
					}
					t.Fatal(err)
				}
				got = append(got, rowStrings(rec)...)
				rec.Release()
			}
			sort.Strings(got)
			want := readExpected(t, filepath.Join(root, name, "expected", "latest", "table_content"), sc.Schema())
			if len(want) == 0 {
				t.Fatal("no expected rows")
			}
			t.Logf("%d rows", len(got))
			equalRows(t, got, want)
			if sc.FilesRead() != len(l.adds) {
				t.Errorf("FilesRead = %d, want %d", sc.FilesRead(), len(l.adds))
			}
		})
		ran++
	}
	if ran == 0 {
		t.Fatal("no DAT cases found")
	}
}

// TestDATPruningKeepsMatches prunes the Spark-written DAT tables with a point filter on
// every value of every primitive column (and IS NULL) and checks that no matching row is
// lost: it exercises our reading of Spark's stats and partition-value formats.
func TestDATPruningKeepsMatches(t *testing.T) {
	t.Parallel()
	root := testdata.DAT(t)
	cases, _ := os.ReadDir(root)
	for _, c := range cases {
		name := c.Name()
		if !c.IsDir() {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := readDatLog(t, filepath.Join(root, name, "delta", "_delta_log"))
			if !l.complete || !datReadable(l) {
				t.Skip("needs column mapping or a checkpoint")
			}
			for _, a := range l.adds {
				if a.DeletionVector != nil {
					t.Skip("deletion vectors are not supported")
				}
			}
			store := dirStore{root: filepath.Join(root, name, "delta")}
			all := scanAllDat(t, store, l, l.adds, nil)
			defer func() {
				for _, r := range all {
					r.Release()
				}
			}()
			checked := 0
			for j, fld := range l.schema.Fields {
				k := kindOf(fld.Type)
				if k == kindNone || k == kindBinary {
					continue
				}
				filters := []*Filter{{Columns: []ColumnFilter{{Column: fld.Name, IsNull: true}}}}
				for _, rec := range all {
					for i := 0; i < int(rec.NumRows()); i++ {
						v, ok := rowValue(rec.Column(j), i)
						if !ok {
							continue
						}
						switch k {
						case kindDate:
							v = time.Unix(v.(int64)*86400, 0).UTC()
						case kindTimestamp:
							v = time.UnixMicro(v.(int64)).UTC()
						}
						filters = append(filters, &Filter{Columns: []ColumnFilter{{Column: fld.Name, Ranges: []Range{{Lo: Bound{v, true}, Hi: Bound{v, true}}}}}})
					}
				}
				for _, f := range filters {
					want := matchingRows(l.schema, all, f)
					kept := PruneFiles(l.schema, l.parts, l.adds, f)
					recs := scanAllDat(t, store, l, kept, f)
					got := matchingRows(l.schema, recs, f)
					for _, r := range recs {
						r.Release()
					}
					if strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Fatalf("column %s filter %+v: pruning lost rows\ngot  %q\nwant %q", fld.Name, f.Columns[0], got, want)
					}
					checked++
				}
			}
			t.Logf("%d filters checked", checked)
		})
	}
}

func scanAllDat(t *testing.T, store storage.Store, l datLog, files []*txlog.Add, f *Filter) []arrow.RecordBatch {
	t.Helper()
	sc, err := Scan(context.Background(), store, l.schema, l.parts, files, ScanOptions{Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	var out []arrow.RecordBatch
	for {
		rec, _, err := sc.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
}

// datReadable reports whether the table layer reads this table: no column mapping, and
// reader 1 or reader 3 with only the timestampNtz and deletionVectors features (files with
// a deletion vector are refused one by one).
func datReadable(l datLog) bool {
	if l.mapping != "" && l.mapping != "none" {
		return false
	}
	p := l.protocol
	switch p.MinReaderVersion {
	case 1:
		return true
	case 3:
		for _, f := range p.ReaderFeatures {
			if f != "timestampNtz" && f != "deletionVectors" {
				return false
			}
		}
		return true
	}
	return false
}
