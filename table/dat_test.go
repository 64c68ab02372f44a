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

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// datDir finds shared/testdata/dat: $LAKEHOUSED_TESTDATA/dat, or by walking up from the
// package directory.
func datDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("LAKEHOUSED_TESTDATA"); d != "" {
		return filepath.Join(d, "dat")
	}
	dir, _ := os.Getwd()
	for {
		cand := filepath.Join(dir, "shared", "testdata", "dat")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("shared/testdata/dat not found; set LAKEHOUSED_TESTDATA")
		}
		dir = parent
	}
}

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
	complete bool // every version from 0 has a JSON commit
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
			case a.Protocol != nil:
				l.protocol = *a.Protocol
			case a.Add != nil:
				if _, ok := live[a.Add.Path]; !ok {
					order = append(order, a.Add.Path)
				}
				live[a.Add.Path] = a.Add
			case a.Remove != nil:
				delete(live, a.Remove.Path)
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
			r := array.NewRecord(out, cols, rec.NumRows())
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

// TestDATReadCompatibility scans every DAT table at protocol (1,2) or (1,4) written by
// Spark and compares its rows with the expected rows as a multiset. Cases whose early
// history exists only in a checkpoint (no_replay) are skipped: reading checkpoints is
// txlog's job.
func TestDATReadCompatibility(t *testing.T) {
	t.Parallel()
	root := datDir(t)
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
			p := l.protocol
			if !(p.MinReaderVersion == 1 && (p.MinWriterVersion == 2 || p.MinWriterVersion == 4)) {
				t.Skipf("protocol (%d,%d) is not (1,2)/(1,4)", p.MinReaderVersion, p.MinWriterVersion)
			}
			if !l.complete {
				t.Skip("history starts at a checkpoint; reading checkpoints is txlog's job")
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
			t.Logf("%d rows, first %s", len(got), got[0])
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
