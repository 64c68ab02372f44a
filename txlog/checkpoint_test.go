package txlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/lakehoused/lakehoused/internal/testdata"
	"github.com/lakehoused/lakehoused/storage"
)

// sameState compares the reconciled state of two snapshots.
func sameState(t *testing.T, label string, got, want *Snapshot) {
	t.Helper()
	sameStateStats(t, label, got, want, true)
}

// sameStateStats is sameState; withStats=false skips add.stats, for Spark checkpoints
// written with delta.checkpoint.writeStatsAsJson=false and no stats_parsed.
func sameStateStats(t *testing.T, label string, got, want *Snapshot, withStats bool) {
	t.Helper()
	if got.Version != want.Version {
		t.Errorf("%s: version %d, want %d", label, got.Version, want.Version)
	}
	if !reflect.DeepEqual(got.Protocol, want.Protocol) {
		t.Errorf("%s: protocol %+v, want %+v", label, got.Protocol, want.Protocol)
	}
	gm, wm := got.Metadata, want.Metadata
	if gm.ID != wm.ID || gm.SchemaString != wm.SchemaString || !reflect.DeepEqual(gm.PartitionColumns, wm.PartitionColumns) || len(gm.Configuration) != len(wm.Configuration) {
		t.Errorf("%s: metadata\n got %+v\nwant %+v", label, gm, wm)
	}
	if len(got.Files) != len(want.Files) {
		t.Fatalf("%s: files %v, want %v", label, paths(got.Files), paths(want.Files))
	}
	for i := range got.Files {
		g, w := got.Files[i], want.Files[i]
		if g.Path != w.Path || g.Size != w.Size || g.ModificationTime != w.ModificationTime || (withStats && g.Stats != w.Stats) ||
			len(g.PartitionValues) != len(w.PartitionValues) {
			t.Errorf("%s: file %d\n got %+v\nwant %+v", label, i, g, w)
		}
		for k, v := range w.PartitionValues {
			if g.PartitionValues[k] != v {
				t.Errorf("%s: %s partition %s=%q, want %q", label, g.Path, k, g.PartitionValues[k], v)
			}
		}
	}
	if len(got.Tombstones) != len(want.Tombstones) {
		t.Errorf("%s: %d tombstones, want %d", label, len(got.Tombstones), len(want.Tombstones))
	}
	if !reflect.DeepEqual(got.Txns, want.Txns) {
		t.Errorf("%s: txns %v, want %v", label, got.Txns, want.Txns)
	}
}

// replayJSON reconstructs version from the JSON commits alone, ignoring checkpoints.
func replayJSON(t *testing.T, store storage.Store, version int64) *Snapshot {
	t.Helper()
	l := NewLog(store)
	var commits []Commit
	for v := int64(0); v <= version; v++ {
		c, err := l.readCommit(context.Background(), v, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		commits = append(commits, c)
	}
	s, err := Replay(nil, commits)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCheckpointWrittenAtInterval commits ten versions and checks that the checkpoint the
// committer wrote at version 10 reads back to the same state as replaying the JSON.
func TestCheckpointWrittenAtInterval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c := newTable(t, nil)
	v := int64(0)
	for i := 1; i <= 10; i++ {
		acts := []Action{addFile(fmt.Sprintf("p=x/part-%02d.parquet", i), i)}
		switch i {
		case 4:
			acts = append(acts, removeFile("p=x/part-02.parquet"))
		case 6:
			acts = append(acts, Action{Txn: &Txn{AppID: "stream-1", Version: 6}})
		case 7:
			acts = []Action{{Add: &Add{Path: "p=a%20b/part-07.parquet", PartitionValues: map[string]string{"p": "a b"}, Size: 7, DataChange: true}}}
		}
		v = mustCommit(t, c, store, v, acts...)
		if i < 10 {
			if _, err := store.Stat(ctx, fmt.Sprintf("_delta_log/%020d.checkpoint.parquet", v)); !errors.Is(err, storage.ErrNotExist) {
				t.Fatalf("unexpected checkpoint at %d: %v", v, err)
			}
		}
	}
	if v != 10 {
		t.Fatalf("last version %d", v)
	}
	c.Wait() // the checkpoint is written in the background after the commit returns
	b, err := store.Get(ctx, "_delta_log/_last_checkpoint")
	if err != nil {
		t.Fatalf("no _last_checkpoint: %v", err)
	}
	var lc lastCheckpoint
	if err := json.Unmarshal(b, &lc); err != nil || lc.Version != 10 || lc.Size == 0 {
		t.Fatalf("_last_checkpoint = %s (%v)", b, err)
	}
	actions, err := readCheckpoint(ctx, store, lc.keys())
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(actions)) != lc.Size {
		t.Errorf("checkpoint has %d actions, _last_checkpoint says %d", len(actions), lc.Size)
	}
	fromCP, err := snapshotFromCheckpoint(10, time.Time{}, actions)
	if err != nil {
		t.Fatal(err)
	}
	checkCheckpointParquetSchema(t, store, lc.keys()[0])
	want := replayJSON(t, store, 10)
	sameState(t, "checkpoint v10", fromCP, want)
	if len(want.Files) != 9 || len(want.Tombstones) != 1 {
		t.Fatalf("replay: %d files %d tombstones", len(want.Files), len(want.Tombstones))
	}

	// With the early commits gone, a cold Log must rebuild from the checkpoint alone.
	for i := range 10 {
		if err := store.Delete(ctx, commitKey(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	cold := NewLog(store)
	s, err := cold.Snapshot(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, "cold load", s, want)
	if _, ok := s.File("p=a b/part-07.parquet"); !ok {
		t.Error("File() does not find a URL-encoded path by its decoded name")
	}
	_, err = cold.Snapshot(ctx, 5)
	if !errors.Is(err, ErrVersionNotFound) || !strings.Contains(err.Error(), "10 to 10") {
		t.Errorf("Snapshot(5) after cleanup: %v", err)
	}
}

// TestCheckpointFallbacks: a wrong _last_checkpoint or an unreadable checkpoint must not
// make the table unreadable.
func TestCheckpointFallbacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c := newTable(t, map[string]string{"delta.checkpointInterval": "2"})
	c.SyncCheckpoints = true // both checkpoints must exist; in the background one could be skipped
	v := int64(0)
	for i := 1; i <= 5; i++ {
		v = mustCommit(t, c, store, v, addFile(fmt.Sprintf("f%d.parquet", i), i))
	}
	want := replayJSON(t, store, 5)
	for _, cp := range []int64{2, 4} {
		if _, err := store.Stat(ctx, fmt.Sprintf("_delta_log/%020d.checkpoint.parquet", cp)); err != nil {
			t.Fatalf("checkpoint %d missing: %v", cp, err)
		}
	}
	cases := []struct {
		name   string
		break_ func()
	}{
		{"pointer to missing checkpoint", func() { store.Put(ctx, lastCheckpointKey, []byte(`{"version":8,"size":3}`)) }},
		{"garbage pointer", func() { store.Put(ctx, lastCheckpointKey, []byte(`not json`)) }},
		{"wrong size", func() { store.Put(ctx, lastCheckpointKey, []byte(`{"version":4,"size":99}`)) }},
		{"no pointer", func() { store.Delete(ctx, lastCheckpointKey) }},
		{"corrupt newest checkpoint", func() { store.Put(ctx, "_delta_log/00000000000000000004.checkpoint.parquet", []byte("PAR1 broken")) }},
	}
	for _, tc := range cases {
		tc.break_()
		var logged bytes.Buffer
		l := NewLog(store)
		l.SetLogger(slog.New(slog.NewTextHandler(&logged, nil)))
		s, err := l.Snapshot(ctx, -1)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		sameState(t, tc.name, s, want)
		if tc.name != "no pointer" && !strings.Contains(logged.String(), "WARN") {
			t.Errorf("%s: fallback was not logged", tc.name)
		}
	}
}

// TestSparkCheckpointsEqualReplay: DAT tables whose logs keep every JSON commit next to a
// Spark-written checkpoint must give the same state either way.
func TestSparkCheckpointsEqualReplay(t *testing.T) {
	t.Parallel()
	root := testdata.DAT(t)
	for _, name := range []string{"with_checkpoint", "stats_as_struct", "no_stats"} {
		store, err := storage.NewLocal(filepath.Join(root, name, "delta"))
		if err != nil {
			t.Fatal(err)
		}
		key := "_delta_log/00000000000000000002.checkpoint.parquet"
		actions, err := readCheckpoint(context.Background(), store, []string{key})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fromCP, err := snapshotFromCheckpoint(2, time.Time{}, actions)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Spark wrote these two checkpoints without any stats (no stats string, no
		// stats_parsed): the files stay readable, only pruning is lost.
		withStats := name == "with_checkpoint"
		sameStateStats(t, name, fromCP, replayJSON(t, store, 2), withStats)
	}
}

// TestMultiPartCheckpointWithParsedStats reads a two-part checkpoint whose adds carry only
// stats_parsed (writeStatsAsJson=false), and ignores a multi-part checkpoint with a part
// missing.
func TestMultiPartCheckpointWithParsedStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := storage.NewMem("mp")
	actions := append(createActions(nil), addFile("a.parquet", 3), addFile("b.parquet", 4))
	// Part 1: protocol + metaData, with our own writer.
	p1, err := EncodeCheckpoint(actions[:2])
	if err != nil {
		t.Fatal(err)
	}
	// Part 2: adds with stats_parsed instead of stats, as a Spark writer configured with
	// writeStatsAsJson=false produces.
	p2 := encodeParsedStatsCheckpoint(t, []struct {
		path string
		rows int64
	}{{"a.parquet", 3}, {"b.parquet", 4}})
	store.Put(ctx, "_delta_log/00000000000000000005.checkpoint.0000000001.0000000002.parquet", p1)
	store.Put(ctx, "_delta_log/00000000000000000005.checkpoint.0000000002.0000000002.parquet", p2)
	// An incomplete newer checkpoint must be ignored.
	store.Put(ctx, "_delta_log/00000000000000000006.checkpoint.0000000001.0000000002.parquet", p1)
	store.Put(ctx, commitKey(6), []byte(`{"commitInfo":{"timestamp":1700000006000}}`+"\n"))
	s, err := NewLog(store).Snapshot(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 6 || len(s.Files) != 2 {
		t.Fatalf("version %d files %v", s.Version, paths(s.Files))
	}
	for i, want := range []int64{3, 4} {
		st, err := ParseStats(s.Files[i].Stats)
		if err != nil || st == nil {
			t.Fatalf("%s: stats %q: %v", s.Files[i].Path, s.Files[i].Stats, err)
		}
		if st.NumRecords != want || fmt.Sprint(st.MaxValues["id"]) != fmt.Sprint(want) {
			t.Errorf("%s: stats %+v", s.Files[i].Path, st)
		}
		if _, ok := st.MinValues["p"]; ok {
			t.Errorf("null stats_parsed entries should be dropped: %s", s.Files[i].Stats)
		}
		if s.Files[i].PartitionValues["p"] != "x" {
			t.Errorf("partitionValues %v", s.Files[i].PartitionValues)
		}
	}
}

func encodeParsedStatsCheckpoint(t *testing.T, files []struct {
	path string
	rows int64
}) []byte {
	t.Helper()
	f := func(name string, dt arrow.DataType) arrow.Field {
		return arrow.Field{Name: name, Type: dt, Nullable: true}
	}
	str, i64 := arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64
	cols := arrow.StructOf(f("id", i64), f("p", str))
	schema := arrow.NewSchema([]arrow.Field{
		f("add", arrow.StructOf(f("path", str), f("partitionValues", arrow.MapOf(str, str)), f("size", i64),
			f("modificationTime", i64), f("dataChange", arrow.FixedWidthTypes.Boolean),
			f("stats_parsed", arrow.StructOf(f("numRecords", i64), f("minValues", cols), f("maxValues", cols),
				f("nullCount", arrow.StructOf(f("id", i64), f("p", i64))))))),
		f("remove", arrow.StructOf(f("path", str))),
	}, nil)
	var rows []string
	for _, fl := range files {
		rows = append(rows, fmt.Sprintf(`{"add":{"path":%q,"partitionValues":[{"key":"p","value":"x"}],"size":%d,"modificationTime":1700000000000,"dataChange":false,`+
			`"stats_parsed":{"numRecords":%d,"minValues":{"id":1},"maxValues":{"id":%d},"nullCount":{"id":0}}}}`, fl.path, 100+fl.rows, fl.rows, fl.rows))
	}
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader("["+strings.Join(rows, ",")+"]"))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &buf, nil, pqarrow.NewArrowWriterProperties())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkCheckpointParquetSchema checks the Parquet types other readers depend on: maps are
// Parquet MAPs, stats is a string, versions are int32.
func checkCheckpointParquetSchema(t *testing.T, store storage.Store, key string) {
	t.Helper()
	b, err := store.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	r, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sc := r.MetaData().Schema
	want := map[string]string{
		"add.partitionValues": "Map", "add.stats": "String", "metaData.configuration": "Map",
		"metaData.partitionColumns": "List", "protocol.minReaderVersion": "Int",
	}
	root := sc.Root()
	found := map[string]string{}
	for i := 0; i < root.NumFields(); i++ {
		top := root.Field(i).(*schema.GroupNode)
		for j := 0; j < top.NumFields(); j++ {
			f := top.Field(j)
			found[top.Name()+"."+f.Name()] = f.LogicalType().String()
		}
	}
	for k, v := range want {
		if !strings.Contains(found[k], v) {
			t.Errorf("checkpoint column %s has logical type %q, want %s", k, found[k], v)
		}
	}
}
