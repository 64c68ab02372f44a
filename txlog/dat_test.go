package txlog

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/lakehoused/lakehoused/internal/testdata"
	"github.com/lakehoused/lakehoused/storage"
)

type datExpected struct {
	Version          int64             `json:"version"`
	Properties       map[string]string `json:"properties"`
	MinReaderVersion int               `json:"min_reader_version"`
	MinWriterVersion int               `json:"min_writer_version"`
}

// TestDAT replays every DAT table at every version it lists and checks the version,
// protocol, properties and the row count against the expected rows.
func TestDAT(t *testing.T) {
	t.Parallel()
	root := testdata.DAT(t)
	cases, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		n++
		caseDir := filepath.Join(root, c.Name())
		t.Run(c.Name(), func(t *testing.T) {
			t.Parallel()
			store, err := storage.NewLocal(filepath.Join(caseDir, "delta"))
			if err != nil {
				t.Fatal(err)
			}
			log := NewLog(store)
			exps, _ := filepath.Glob(filepath.Join(caseDir, "expected", "*"))
			sort.Strings(exps)
			for _, expDir := range exps {
				var exp datExpected
				b, err := os.ReadFile(filepath.Join(expDir, "table_version_metadata.json"))
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(b, &exp); err != nil {
					t.Fatal(err)
				}
				want := -1
				if name := filepath.Base(expDir); name != "latest" {
					want = int(exp.Version)
				}
				p := Protocol{MinReaderVersion: exp.MinReaderVersion}
				supported := exp.MinReaderVersion == 1
				// Fresh logs per expectation so each exercises a cold load, plus the shared one.
				for _, l := range []*Log{log, NewLog(store)} {
					s, err := l.Snapshot(context.Background(), int64(want))
					if !supported {
						readable := p.CheckRead()
						if s2, err2 := l.snapshot(context.Background(), int64(want)); err2 == nil {
							readable = s2.CheckRead()
						}
						if readable == nil {
							// e.g. timestampNtz: a reader feature we support.
							supported = true
						} else {
							if !errors.Is(err, ErrUnsupportedFeature) {
								t.Fatalf("%s: want ErrUnsupportedFeature, got %v", filepath.Base(expDir), err)
							}
							if !strings.Contains(err.Error(), "reader") && !strings.Contains(err.Error(), "column mapping") {
								t.Errorf("error does not explain the feature: %v", err)
							}
							continue
						}
					}
					if err != nil {
						t.Fatalf("%s: %v", filepath.Base(expDir), err)
					}
					checkDATSnapshot(t, filepath.Base(expDir), s, exp, expDir)
				}
			}
			if v, err := log.LatestVersion(context.Background()); err != nil || v < 0 {
				t.Errorf("LatestVersion = %d, %v", v, err)
			}
		})
	}
	// no_replay keeps only commits 2..5 and checkpoints 2 and 4: earlier versions are gone.
	store, err := storage.NewLocal(filepath.Join(root, "no_replay", "delta"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewLog(store).Snapshot(context.Background(), 1)
	if !errors.Is(err, ErrVersionNotFound) || !strings.Contains(err.Error(), "available versions are 2 to 5") {
		t.Errorf("no_replay v1: %v", err)
	}
	if s, err := NewLog(store).Snapshot(context.Background(), 3); err != nil || s.Version != 3 {
		t.Errorf("no_replay v3 (from checkpoint 2): %v", err)
	}
	if n < 19 {
		t.Errorf("found %d DAT cases in %s, want 19", n, root)
	}
}

func checkDATSnapshot(t *testing.T, name string, s *Snapshot, exp datExpected, expDir string) {
	t.Helper()
	if s.Version != exp.Version {
		t.Errorf("%s: version %d, want %d", name, s.Version, exp.Version)
	}
	if s.Protocol.MinReaderVersion != exp.MinReaderVersion || s.Protocol.MinWriterVersion != exp.MinWriterVersion {
		t.Errorf("%s: protocol %+v, want (%d,%d)", name, s.Protocol, exp.MinReaderVersion, exp.MinWriterVersion)
	}
	props := s.Metadata.Configuration
	if props == nil {
		props = map[string]string{}
	}
	if exp.Properties == nil {
		exp.Properties = map[string]string{}
	}
	if !reflect.DeepEqual(props, exp.Properties) {
		t.Errorf("%s: properties %v, want %v", name, props, exp.Properties)
	}
	if s.Schema == nil || len(s.Schema.Fields) == 0 {
		t.Errorf("%s: no schema", name)
	}
	if s.Timestamp.IsZero() {
		t.Errorf("%s: zero timestamp", name)
	}
	wantRows := countParquetRows(t, filepath.Join(expDir, "table_content"))
	var statRows int64
	allStats := true
	for _, f := range s.Files {
		st, err := ParseStats(f.Stats)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, f.Path, err)
		}
		if st == nil {
			allStats = false
			continue
		}
		statRows += st.NumRecords
	}
	if len(s.Files) == 0 && wantRows > 0 {
		t.Errorf("%s: no live files but %d expected rows", name, wantRows)
	}
	if allStats && statRows != wantRows {
		t.Errorf("%s: stats count %d rows in %d files, expected rows %d", name, statRows, len(s.Files), wantRows)
	}
	for _, f := range s.Files {
		if f.PartitionValues == nil {
			t.Errorf("%s: %s has nil partitionValues", name, f.Path)
		}
		if got, ok := s.File(f.Path); !ok || got != f {
			t.Errorf("%s: File(%q) not found", name, f.Path)
		}
	}
}

func countParquetRows(t *testing.T, dir string) int64 {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	var n int64
	for _, p := range paths {
		r, err := file.OpenParquetFile(p, false)
		if err != nil {
			t.Fatal(err)
		}
		n += r.NumRows()
		r.Close()
	}
	return n
}
