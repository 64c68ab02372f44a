package txlog

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func at(v int64, actions ...Action) Commit {
	return Commit{Version: v, Timestamp: time.UnixMilli(1700000000000 + v*1000).UTC(), Info: commitInfoOf(actions), Actions: actions}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	v0 := at(0, createActions(nil)...)
	newMeta := createActions(map[string]string{"delta.appendOnly": "true"})[1]
	dvAdd := addFile("dv.parquet", 5)
	dvAdd.Add.DeletionVector = &DeletionVector{StorageType: "u", PathOrInlineDv: "abc", SizeInBytes: 10, Cardinality: 1}
	cases := []struct {
		name      string
		commits   []Commit
		files     []string
		tombs     []string
		txns      map[string]int64
		conf      map[string]string
		wantErr   error
		errSubstr string
	}{
		{name: "create only", commits: []Commit{v0}, files: []string{}, tombs: []string{}},
		{name: "add two", commits: []Commit{v0, at(1, addFile("b", 1), addFile("a", 1))}, files: []string{"a", "b"}, tombs: []string{}},
		{name: "add remove", commits: []Commit{v0, at(1, addFile("a", 1), addFile("b", 1)), at(2, removeFile("a"))}, files: []string{"b"}, tombs: []string{"a"}},
		{name: "re-add after remove", commits: []Commit{v0, at(1, addFile("a", 1)), at(2, removeFile("a")), at(3, addFile("a", 2))}, files: []string{"a"}, tombs: []string{}},
		{name: "encoded remove matches decoded add", commits: []Commit{v0, at(1, addFile("x=a b/f", 1)), at(2, removeFile("x=a%20b/f"))}, files: []string{}, tombs: []string{"x=a%20b/f"}},
		{name: "dv file is its own key", commits: []Commit{v0, at(1, addFile("dv.parquet", 5)), at(2, removeFile("dv.parquet"), dvAdd)}, files: []string{"dv.parquet"}, tombs: []string{"dv.parquet"}},
		{name: "metadata change", commits: []Commit{v0, at(1, newMeta)}, files: []string{}, tombs: []string{}, conf: map[string]string{"delta.appendOnly": "true"}},
		{name: "txn latest wins", commits: []Commit{v0, at(1, Action{Txn: &Txn{AppID: "s", Version: 1}}), at(2, Action{Txn: &Txn{AppID: "s", Version: 7}}, Action{Txn: &Txn{AppID: "o", Version: 2}})},
			files: []string{}, tombs: []string{}, txns: map[string]int64{"s": 7, "o": 2}},
		{name: "v0 without metadata", commits: []Commit{at(0, createActions(nil)[0])}, wantErr: ErrCorruptLog, errSubstr: "version 0 must contain"},
		{name: "gap", commits: []Commit{v0, at(2, addFile("a", 1))}, wantErr: ErrCorruptLog, errSubstr: "version 2 follows version 0"},
		{name: "no version 0", commits: []Commit{at(3, createActions(nil)...)}, wantErr: ErrCorruptLog, errSubstr: "version 0 is missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Replay(nil, tc.commits)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errSubstr) {
					t.Fatalf("err = %v, want %v containing %q", err, tc.wantErr, tc.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			last := tc.commits[len(tc.commits)-1]
			if s.Version != last.Version || !s.Timestamp.Equal(last.Timestamp) {
				t.Errorf("version %d ts %v", s.Version, s.Timestamp)
			}
			if got := paths(s.Files); !reflect.DeepEqual(got, tc.files) {
				t.Errorf("files %v, want %v", got, tc.files)
			}
			var tombs []string = []string{}
			for _, r := range s.Tombstones {
				tombs = append(tombs, r.Path)
			}
			if !reflect.DeepEqual(tombs, tc.tombs) {
				t.Errorf("tombstones %v, want %v", tombs, tc.tombs)
			}
			for app, v := range tc.txns {
				if s.Txns[app].Version != v {
					t.Errorf("txn %s = %d, want %d", app, s.Txns[app].Version, v)
				}
			}
			if tc.conf != nil && !reflect.DeepEqual(s.Metadata.Configuration, tc.conf) {
				t.Errorf("configuration %v, want %v", s.Metadata.Configuration, tc.conf)
			}
			if s.Schema == nil || len(s.Schema.Fields) != 2 {
				t.Errorf("schema %+v", s.Schema)
			}
		})
	}
}

// TestReplayIncremental: replaying on top of a snapshot equals replaying from scratch and
// leaves the base untouched (snapshots are shared between readers).
func TestReplayIncremental(t *testing.T) {
	t.Parallel()
	all := []Commit{at(0, createActions(nil)...), at(1, addFile("a", 1), addFile("b", 1)), at(2, removeFile("a"), addFile("c", 1))}
	base, err := Replay(nil, all[:2])
	if err != nil {
		t.Fatal(err)
	}
	before := paths(base.Files)
	inc, err := Replay(base, all[2:])
	if err != nil {
		t.Fatal(err)
	}
	full, err := Replay(nil, all)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(paths(inc.Files), paths(full.Files)) || len(inc.Tombstones) != len(full.Tombstones) {
		t.Errorf("incremental %v, full %v", paths(inc.Files), paths(full.Files))
	}
	if !reflect.DeepEqual(paths(base.Files), before) {
		t.Errorf("base changed: %v -> %v", before, paths(base.Files))
	}
	if _, ok := inc.File("a"); ok {
		t.Error("removed file still found")
	}
	if f, ok := inc.File("c"); !ok || f.Path != "c" {
		t.Error("File(c) not found")
	}
	// A Snapshot built by hand (no internal maps) is a valid base too.
	manual := &Snapshot{Version: 1, Protocol: full.Protocol, Metadata: full.Metadata, Files: base.Files}
	s, err := Replay(manual, all[2:])
	if err != nil || !reflect.DeepEqual(paths(s.Files), paths(full.Files)) {
		t.Errorf("manual base: %v %v", err, s)
	}
}

func TestParseActions(t *testing.T) {
	t.Parallel()
	data := []byte(`{"commitInfo":{"timestamp":5,"operation":"WRITE","someNewField":{"x":1}}}

{"cdc":{"path":"_change_data/x.parquet","partitionValues":{},"size":1,"dataChange":false}}
{"add":{"path":"a","partitionValues":{},"size":1,"modificationTime":2,"dataChange":true,"clusteringProvider":"liquid"}}
`)
	acts, err := ParseActions("00.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 2 || acts[0].CommitInfo == nil || acts[1].Add == nil {
		t.Fatalf("actions %+v", acts)
	}
	_, err = ParseActions("_delta_log/00000000000000000003.json", []byte("{\"add\":{}}\n{\"add\": broken\n"))
	if !errors.Is(err, ErrCorruptLog) || !strings.Contains(err.Error(), "00000000000000000003.json line 2") {
		t.Fatalf("err = %v", err)
	}
}

func TestEncodeActionsSparkShape(t *testing.T) {
	t.Parallel()
	b, err := EncodeActions([]Action{
		{MetaData: &Metadata{ID: "x", SchemaString: testSchema}},
		{Add: &Add{Path: "a<b>&c", Size: 1, DataChange: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"configuration":{}`, `"partitionColumns":[]`, `"partitionValues":{}`, `"provider":"parquet"`, `"options":{}`, `"path":"a<b>&c"`} {
		if !strings.Contains(s, want) {
			t.Errorf("encoded commit lacks %s:\n%s", want, s)
		}
	}
	if strings.Count(s, "\n") != 2 {
		t.Errorf("want one line per action:\n%s", s)
	}
}

func TestSchemaFieldMetadata(t *testing.T) {
	t.Parallel()
	sc := &Schema{Fields: []StructField{
		{Name: "a", Type: DataType{Name: "long"}, Nullable: true},
		{Name: "s", Type: DataType{Struct: &Schema{Fields: []StructField{{Name: "x", Type: DataType{Name: "string"}}}}}},
		{Name: "m", Type: DataType{Map: &MapType{KeyType: DataType{Name: "string"}, ValueType: DataType{Array: &ArrayType{ElementType: DataType{Name: "integer"}}}}}},
	}}
	got := sc.String()
	if strings.Count(got, `"metadata":{}`) != 4 {
		t.Errorf("nil metadata must be written as {}: %s", got)
	}
	back, err := ParseSchema(got)
	if err != nil || back.String() != got {
		t.Errorf("round trip: %v\n%s\n%s", err, got, back.String())
	}
}

func TestParseStats(t *testing.T) {
	t.Parallel()
	st, err := ParseStats(`{"numRecords":3,"minValues":{"big":9223372036854775807,"n":{"x":1.5}},"maxValues":{"s":"z"},"nullCount":{"big":0},"tightBounds":false}`)
	if err != nil {
		t.Fatal(err)
	}
	if st.NumRecords != 3 || st.TightBounds == nil || *st.TightBounds {
		t.Errorf("stats %+v", st)
	}
	if got := st.MinValues["big"]; got.(interface{ String() string }).String() != "9223372036854775807" {
		t.Errorf("big int lost precision: %v", got)
	}
	if st, err := ParseStats(""); st != nil || err != nil {
		t.Errorf("empty stats: %v %v", st, err)
	}
	if _, err := ParseStats("{broken"); err == nil {
		t.Error("broken stats accepted")
	}
	again, err := ParseStats(st.String())
	if err != nil || again.NumRecords != 3 {
		t.Errorf("round trip %v %v", again, err)
	}
}

// TestReplayIncrementalRandom: replaying one commit at a time (the cache's path) gives
// the same files and tombstones, in the same order, as replaying everything at once.
func TestReplayIncrementalRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	commits := []Commit{at(0, createActions(nil)...)}
	for v := int64(1); v < 200; v++ {
		var acts []Action
		seen := map[string]bool{}
		for range 1 + rng.IntN(4) {
			p := fmt.Sprintf("f%03d", rng.IntN(60))
			if seen[p] {
				continue
			}
			seen[p] = true
			if rng.IntN(3) == 0 {
				acts = append(acts, removeFile(p))
			} else {
				acts = append(acts, addFile(p, 1))
			}
		}
		commits = append(commits, at(v, acts...))
	}
	full, err := Replay(nil, commits)
	if err != nil {
		t.Fatal(err)
	}
	var inc *Snapshot
	for i := range commits {
		if inc, err = Replay(inc, commits[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(paths(inc.Files), paths(full.Files)) {
		t.Errorf("files differ:\n inc %v\nfull %v", paths(inc.Files), paths(full.Files))
	}
	if len(inc.Tombstones) != len(full.Tombstones) {
		t.Errorf("tombstones %d vs %d", len(inc.Tombstones), len(full.Tombstones))
	}
	for i := range inc.Tombstones {
		if inc.Tombstones[i].Path != full.Tombstones[i].Path {
			t.Errorf("tombstone %d: %s vs %s", i, inc.Tombstones[i].Path, full.Tombstones[i].Path)
		}
	}
}

// BenchmarkRefreshAppend measures the cache's cost of one small commit on a table with
// 10,000 live files.
func BenchmarkRefreshAppend(b *testing.B) {
	acts := createActions(nil)
	for i := range 10000 {
		acts = append(acts, addFile(fmt.Sprintf("part-%05d.parquet", i), 1))
	}
	base, err := Replay(nil, []Commit{at(0, acts...)})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := Replay(base, []Commit{at(1, addFile(fmt.Sprintf("new-%d.parquet", i), 1))}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCommitInfoLenient(t *testing.T) {
	t.Parallel()
	line := `{"commitInfo":{"timestamp":1712091396057,"operation":"WRITE","operationParameters":{"mode":"Append","partitionBy":"[]"},"readVersion":"4","isBlindAppend":true,"operationMetrics":{"execution_time_ms":3,"numFiles":"1","nested":{"a":1}},"clientVersion":"delta-rs.0.17.0"}}`
	acts, err := ParseActions("x.json", []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	ci := acts[0].CommitInfo
	if ci.Timestamp != 1712091396057 || ci.Operation != "WRITE" || ci.ReadVersion == nil || *ci.ReadVersion != 4 ||
		ci.IsBlindAppend == nil || !*ci.IsBlindAppend || ci.OperationMetrics["execution_time_ms"] != "3" ||
		ci.OperationMetrics["numFiles"] != "1" || ci.OperationParameters["mode"] != "Append" {
		t.Errorf("commitInfo %+v", ci)
	}
	if _, err := ParseActions("y.json", []byte(`{"commitInfo":{"timestamp":"soon"}}`)); err != nil {
		t.Errorf("a bad commitInfo field must not make the commit unreadable: %v", err)
	}
}

// TestReplayMatchesModel replays random commits one at a time (the incremental path) and
// all at once, and checks both against a plain map of the protocol's rules, including
// %-escaped paths, deletion vectors and File lookups.
func TestReplayMatchesModel(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	names := []string{"a", "b", "c=x y/f1", "c=x%20y/f2", "d/%41", "e", "f", "g"}
	dv := &DeletionVector{StorageType: "u", PathOrInlineDv: "q", SizeInBytes: 1, Cardinality: 1}
	commits := []Commit{at(0, createActions(nil)...)}
	live := map[string]*Add{}     // key → add
	tombs := map[string]*Remove{} // key → remove
	inc, err := Replay(nil, commits)
	if err != nil {
		t.Fatal(err)
	}
	for v := int64(1); v <= 300; v++ {
		var actions []Action
		used := map[string]bool{}
		for range 1 + rng.IntN(4) {
			name := names[rng.IntN(len(names))]
			var d *DeletionVector
			if rng.IntN(4) == 0 {
				d = dv
			}
			k := fileKey(name, d)
			if used[k] {
				continue
			}
			used[k] = true
			if _, ok := live[k]; ok && rng.IntN(2) == 0 {
				r := &Remove{Path: name, DeletionVector: d, DataChange: true}
				actions = append(actions, Action{Remove: r})
				delete(live, k)
				tombs[k] = r
				continue
			}
			a := &Add{Path: name, DeletionVector: d, Size: v, DataChange: true}
			actions = append(actions, Action{Add: a})
			live[k] = a
			delete(tombs, k)
		}
		c := at(v, actions...)
		commits = append(commits, c)
		if inc, err = Replay(inc, []Commit{c}); err != nil {
			t.Fatal(err)
		}
	}
	full, err := Replay(nil, commits)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Snapshot{inc, full} {
		if len(s.Files) != len(live) || len(s.Tombstones) != len(tombs) {
			t.Fatalf("files %d tombstones %d, want %d and %d", len(s.Files), len(s.Tombstones), len(live), len(tombs))
		}
		for i, a := range s.Files {
			if live[addKey(a)] != a {
				t.Errorf("file %s is not the live add of its key", a.Path)
			}
			if i > 0 && addKey(s.Files[i-1]) >= addKey(a) {
				t.Errorf("files out of order at %d", i)
			}
		}
		for i, r := range s.Tombstones {
			if tombs[removeKey(r)] != r {
				t.Errorf("tombstone %s is not the latest remove of its key", r.Path)
			}
			if i > 0 && removeKey(s.Tombstones[i-1]) >= removeKey(r) {
				t.Errorf("tombstones out of order at %d", i)
			}
		}
		for _, name := range names {
			_, want := live[fileKey(name, nil)]
			if !want {
				_, want = live[fileKey(name, dv)]
			}
			if _, got := s.File(name); got != want {
				t.Errorf("File(%q) = %v, want %v", name, got, want)
			}
		}
	}
}
