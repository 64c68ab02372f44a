package compaction

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

const testSchema = `{"type":"struct","fields":[
 {"name":"id","type":"long","nullable":false,"metadata":{}},
 {"name":"x","type":"long","nullable":true,"metadata":{}},
 {"name":"y","type":"double","nullable":true,"metadata":{}},
 {"name":"region","type":"string","nullable":true,"metadata":{}}]}`

type testTable struct {
	Table
	dir    string
	schema *txlog.Schema
	parts  []string
	c      *txlog.StorageCommitter
}

func newTestTable(t *testing.T, parts []string, conf map[string]string) *testTable {
	return newTestTableAt(t, parts, conf, nil)
}

// newTestTableAt creates the table with a committer whose clock reads *clock (nil: real).
func newTestTableAt(t *testing.T, parts []string, conf map[string]string, clock *time.Time) *testTable {
	t.Helper()
	dir := t.TempDir()
	store, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := txlog.ParseSchema(testSchema)
	if err != nil {
		t.Fatal(err)
	}
	if conf == nil {
		conf = map[string]string{}
	}
	c := txlog.NewStorageCommitter()
	c.SyncCheckpoints = true
	if clock != nil {
		c.Now = func() time.Time { return *clock }
	}
	log := txlog.NewLog(store)
	_, err = c.Commit(context.Background(), log, -1, []txlog.Action{
		{Protocol: &txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		{MetaData: &txlog.Metadata{ID: "t", Format: txlog.Format{Provider: "parquet"}, SchemaString: testSchema, PartitionColumns: parts, Configuration: conf}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testTable{Table: Table{Name: "test.t", Store: store, Log: log, Committer: c}, dir: dir, schema: schema, parts: parts, c: c}
}

// insert commits one file per call holding rows [from, from+n).
func (tt *testTable) insert(t *testing.T, from, n int, region string) {
	t.Helper()
	ctx := context.Background()
	as, _ := table.ArrowSchema(tt.schema)
	b := array.NewRecordBuilder(memory.DefaultAllocator, as)
	defer b.Release()
	for i := from; i < from+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.Int64Builder).Append(int64(i * 7 % 1000))
		b.Field(2).(*array.Float64Builder).Append(float64(i) / 3)
		b.Field(3).(*array.StringBuilder).Append(region)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	w, err := table.NewWriter(tt.Store, tt.schema, tt.parts, table.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	adds, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tt.Log.Snapshot(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	var actions []txlog.Action
	for _, a := range adds {
		actions = append(actions, txlog.Action{Add: a})
	}
	if _, err := tt.Committer.Commit(ctx, tt.Log, snap.Version, actions); err != nil {
		t.Fatal(err)
	}
}

// ids returns every id in the table at version v (-1 latest), sorted.
func (tt *testTable) ids(t *testing.T, v int64) []int64 {
	t.Helper()
	ctx := context.Background()
	snap, err := tt.Log.Snapshot(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := table.Scan(ctx, tt.Store, snap.Schema, snap.Metadata.PartitionColumns, snap.Files, table.ScanOptions{Columns: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	var out []int64
	for {
		rec, _, err := sc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec.Column(0).(*array.Int64).Int64Values()...)
		rec.Release()
	}
	slices.Sort(out)
	return out
}

func seq(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

func latest(t *testing.T, tt *testTable) *txlog.Snapshot {
	t.Helper()
	s, err := tt.Log.Snapshot(context.Background(), -1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOptimizeBinPacksSmallFiles(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t, []string{"region"}, nil)
	for i := 0; i < 30; i++ {
		region := []string{"eu", "us", "ap"}[i%3]
		tt.insert(t, i*10, 10, region)
	}
	before := latest(t, tt)
	if len(before.Files) != 30 {
		t.Fatalf("files before = %d", len(before.Files))
	}
	jobs := &Jobs{}
	job := jobs.Start("optimize", "test.t", 0)
	res, err := Optimize(ctx, tt.Table, Options{Job: job})
	job.End(err)
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesRemoved != 30 || res.FilesAdded != 3 || res.PartitionsOptimized != 3 {
		t.Fatalf("result %+v, want 30 removed, 3 added, 3 partitions", res)
	}
	if res.MinSize <= 0 || res.MinSize > res.P50Size || res.P50Size > res.MaxSize {
		t.Fatalf("sizes after: %+v", res)
	}
	after := latest(t, tt)
	if len(after.Files) != 3 {
		t.Fatalf("files after = %d", len(after.Files))
	}
	for _, f := range after.Files {
		if f.DataChange {
			t.Errorf("compacted file %s has dataChange=true", f.Path)
		}
		if !strings.HasPrefix(f.Path, "region=") {
			t.Errorf("compacted file %s left its partition directory", f.Path)
		}
	}
	if got := tt.ids(t, -1); !slices.Equal(got, seq(300)) {
		t.Fatalf("ids after optimize: %d rows", len(got))
	}
	// The old version still reads the same rows (time travel).
	if got := tt.ids(t, before.Version); !slices.Equal(got, seq(300)) {
		t.Fatalf("ids at the old version: %d rows", len(got))
	}
	c, err := tt.Log.History(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c[0].Info.Operation != "OPTIMIZE" || *c[0].Info.IsBlindAppend {
		t.Fatalf("commit info %+v", c[0].Info)
	}
	for _, a := range c[0].Actions {
		if a.Remove != nil && a.Remove.DataChange || a.Add != nil && a.Add.DataChange {
			t.Fatalf("OPTIMIZE action with dataChange=true: %+v", a)
		}
	}
	st := jobs.List()
	if len(st) != 1 || st[0].State != "done" || st[0].FilesDone != 30 || st[0].FilesTotal != 30 || st[0].BytesDone != st[0].BytesTotal {
		t.Fatalf("job status %+v", st)
	}
	// A second run finds nothing to do.
	res, err = Optimize(ctx, tt.Table, Options{})
	if err != nil || res.Version != -1 || res.FilesRemoved != 0 {
		t.Fatalf("second optimize: %+v, %v", res, err)
	}
}

func TestOptimizeWherePartitions(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t, []string{"region"}, nil)
	for i := 0; i < 8; i++ {
		tt.insert(t, i*10, 10, []string{"eu", "us"}[i%2])
	}
	res, err := Optimize(ctx, tt.Table, Options{Predicate: "region = 'eu'", Where: func(_ context.Context, parts []map[string]string) ([]bool, error) {
		out := make([]bool, len(parts))
		for i, p := range parts {
			out[i] = p["region"] == "eu"
		}
		return out, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesRemoved != 4 || res.FilesAdded != 1 || res.PartitionsOptimized != 1 {
		t.Fatalf("result %+v", res)
	}
	perRegion := map[string]int{}
	for _, f := range latest(t, tt).Files {
		perRegion[f.PartitionValues["region"]]++
	}
	if perRegion["eu"] != 1 || perRegion["us"] != 4 {
		t.Fatalf("files per region after: %v", perRegion)
	}
}

func TestOptimizeRetriesAfterConcurrentDelete(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t, nil, nil)
	for i := 0; i < 5; i++ {
		tt.insert(t, i*10, 10, "eu")
	}
	// A committer that lets a "user" remove one of the files right before OPTIMIZE's
	// first commit lands: the compaction must re-plan, not fail and not resurrect rows.
	var once sync.Once
	tt.Committer = committerFunc(func(ctx context.Context, log *txlog.Log, rv int64, actions []txlog.Action, opts ...txlog.CommitOption) (int64, error) {
		once.Do(func() {
			snap, _ := log.Snapshot(ctx, -1)
			victim := snap.Files[0]
			now := time.Now().UnixMilli()
			if _, err := tt.c.Commit(ctx, log, snap.Version, []txlog.Action{{Remove: &txlog.Remove{Path: victim.Path, DeletionTimestamp: &now, DataChange: true}}}); err != nil {
				t.Error(err)
			}
		})
		return tt.c.Commit(ctx, log, rv, actions, opts...)
	})
	res, err := Optimize(ctx, tt.Table, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesRemoved != 4 || res.FilesAdded != 1 {
		t.Fatalf("result after re-plan: %+v", res)
	}
	if got := tt.ids(t, -1); len(got) != 40 {
		t.Fatalf("rows after: %d, want 40", len(got))
	}
	// The files written by the failed attempt were deleted.
	objs, _ := tt.Store.List(ctx, "")
	live := map[string]bool{}
	for _, f := range latest(t, tt).Files {
		live[f.Path] = true
	}
	var parquet int
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".parquet") && !strings.HasPrefix(o.Key, "_delta_log") {
			parquet++
		}
	}
	if parquet != 1+5 { // the compacted file and the five originals (not vacuumed)
		t.Fatalf("%d data files in the folder, want 6", parquet)
	}
}

type committerFunc func(ctx context.Context, log *txlog.Log, rv int64, actions []txlog.Action, opts ...txlog.CommitOption) (int64, error)

func (f committerFunc) Commit(ctx context.Context, log *txlog.Log, rv int64, actions []txlog.Action, opts ...txlog.CommitOption) (int64, error) {
	return f(ctx, log, rv, actions, opts...)
}

// TestUserRemoveAfterCompactionIsRebaseError: a transaction that read the table before a
// compaction and removes a compacted file gets a RebaseError, not a plain conflict.
func TestUserRemoveAfterCompactionIsRebaseError(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t, nil, nil)
	for i := 0; i < 3; i++ {
		tt.insert(t, i*10, 10, "eu")
	}
	read := latest(t, tt)
	if _, err := Optimize(ctx, tt.Table, Options{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	_, err := tt.c.Commit(ctx, tt.Log, read.Version, []txlog.Action{{Remove: &txlog.Remove{Path: read.Files[0].Path, DeletionTimestamp: &now, DataChange: true}}})
	var re *txlog.RebaseError
	if !errors.As(err, &re) || !errors.Is(err, txlog.ErrConflict) {
		t.Fatalf("err = %v, want a RebaseError wrapping ErrConflict", err)
	}
	if re.Version != read.Version+1 {
		t.Fatalf("rebase version %d, want %d", re.Version, read.Version+1)
	}
}

func TestZOrderPrunesOnEachColumn(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t, nil, map[string]string{"delta.targetFileSize": "20000"})
	// 64k rows with two independent uniform columns, written in id order.
	as, _ := table.ArrowSchema(tt.schema)
	b := array.NewRecordBuilder(memory.DefaultAllocator, as)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 1 << 16
	for i := 0; i < n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.Int64Builder).Append(rng.Int64N(1_000_000))
		b.Field(2).(*array.Float64Builder).Append(rng.Float64())
		b.Field(3).(*array.StringBuilder).AppendNull()
	}
	rec := b.NewRecordBatch()
	w, _ := table.NewWriter(tt.Store, tt.schema, nil, table.WriterOptions{TargetFileSize: 1 << 30})
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	b.Release()
	adds, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tt.Committer.Commit(ctx, tt.Log, 0, []txlog.Action{{Add: adds[0]}}); err != nil {
		t.Fatal(err)
	}
	res, err := ZOrder(ctx, tt.Table, []string{"x", "Y"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap := latest(t, tt)
	if res.FilesAdded < 16 || int(res.FilesAdded) != len(snap.Files) {
		t.Fatalf("zorder wrote %d files (%d live); want many small ones", res.FilesAdded, len(snap.Files))
	}
	if got := tt.ids(t, -1); !slices.Equal(got, seq(n)) {
		t.Fatalf("rows after zorder: %d", len(got))
	}
	c, _ := tt.Log.History(ctx, 1)
	if z := c[0].Info.OperationParameters["zOrderBy"]; z != `["x","y"]` {
		t.Fatalf("zOrderBy = %v", z)
	}
	// A 1% range on either column alone reads a small fraction of the files.
	for _, col := range []struct {
		name   string
		lo, hi any
	}{{"x", int64(430_000), int64(440_000)}, {"y", 0.25, 0.26}} {
		f := &table.Filter{Columns: []table.ColumnFilter{{Column: col.name, Ranges: []table.Range{{
			Lo: table.Bound{Value: col.lo, Inclusive: true}, Hi: table.Bound{Value: col.hi, Inclusive: true}}}}}}
		kept := table.PruneFiles(snap.Schema, nil, snap.Files, f)
		frac := float64(len(kept)) / float64(len(snap.Files))
		t.Logf("1%% range on %s reads %d of %d files (%.1f%%)", col.name, len(kept), len(snap.Files), 100*frac)
		if frac > 0.15 {
			t.Errorf("1%% range on %s reads %.0f%% of the files after ZORDER", col.name, 100*frac)
		}
	}
}

func TestZOrderBadColumns(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t, []string{"region"}, nil)
	tt.insert(t, 0, 10, "eu")
	v := latest(t, tt).Version
	for _, tc := range []struct {
		cols []string
		want string
	}{
		{[]string{"nope"}, `"nope" does not exist`},
		{[]string{"region"}, "partition column"},
		{[]string{"x", "X"}, "listed twice"},
		{nil, "at least one column"},
	} {
		_, err := ZOrder(ctx, tt.Table, tc.cols, Options{})
		if !errors.Is(err, ErrBadArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ZOrder(%v) = %v, want ErrBadArgument mentioning %q", tc.cols, err, tc.want)
		}
	}
	if latest(t, tt).Version != v {
		t.Fatal("a refused ZORDER committed something")
	}
}

func TestVacuumKeepsEverythingInsideRetention(t *testing.T) {
	ctx := context.Background()
	clock := time.Now().Add(-30 * 24 * time.Hour)
	// A partition value that needs escaping in paths, and tombstones kept long enough for a
	// FULL vacuum with a 15-day retention.
	tt := newTestTableAt(t, []string{"region"}, map[string]string{"delta.deletedFileRetentionDuration": "interval 30 days"}, &clock)
	const region = "eu west/1%"
	// Day 0-9: one insert a day, then an OPTIMIZE on day 10 and another insert + OPTIMIZE on day 20.
	for d := 0; d < 10; d++ {
		clock = clock.Add(24 * time.Hour)
		tt.insert(t, d*10, 10, region)
	}
	clock = clock.Add(24 * time.Hour)
	if _, err := Optimize(ctx, tt.Table, Options{Now: func() time.Time { return clock }}); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(10 * 24 * time.Hour)
	tt.insert(t, 100, 10, region)
	if _, err := Optimize(ctx, tt.Table, Options{Now: func() time.Time { return clock }}); err != nil {
		t.Fatal(err)
	}
	tt.c.Now = time.Now
	// Without in-commit timestamps a version's time is its commit file's mtime: make those
	// match the simulated clock, and read through a fresh Log.
	hist, err := tt.Log.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hist {
		ts := time.UnixMilli(c.Info.Timestamp)
		_ = os.Chtimes(filepath.Join(tt.dir, "_delta_log", fmt.Sprintf("%020d.json", c.Version)), ts, ts)
	}
	tt.Log = txlog.NewLog(tt.Store)
	// An orphan, old and new, and a hidden file that must never be touched.
	old := time.Now().Add(-30 * 24 * time.Hour)
	for _, name := range []string{"orphan-old.parquet", "orphan-new.parquet", "_hidden/keep.parquet"} {
		if err := tt.Store.Put(ctx, name, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Chtimes(filepath.Join(tt.dir, "orphan-old.parquet"), old, old)
	_ = os.Chtimes(filepath.Join(tt.dir, "_hidden", "keep.parquet"), old, old)

	// Every data file is older than any cutoff: only the log can tell live from dead.
	_ = filepath.WalkDir(tt.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") && !strings.Contains(p, "_delta_log") && !strings.Contains(p, "orphan-new") {
			_ = os.Chtimes(p, old, old)
		}
		return nil
	})
	latestV := latest(t, tt).Version
	// Retention of 15 days: the day-10 OPTIMIZE's removes are older (deletable); the
	// day-20 one's are inside the window (kept).
	retention := 15 * 24 * time.Hour
	dry, err := Vacuum(ctx, tt.Table, VacuumOptions{Retention: retention, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.FilesDeleted != 10 || dry.Version != -1 {
		t.Fatalf("dry run: %+v, want 10 files", dry)
	}
	if latest(t, tt).Version != latestV {
		t.Fatal("dry run committed")
	}
	res, err := Vacuum(ctx, tt.Table, VacuumOptions{Retention: retention})
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesDeleted != 10 || res.BytesDeleted != dry.BytesDeleted {
		t.Fatalf("vacuum: %+v, want the dry run's %+v", res, dry)
	}
	// Every version whose time is inside the window reads completely.
	cutoff := time.Now().Add(-retention)
	for v := int64(0); v <= latestV; v++ {
		snap, err := tt.Log.Snapshot(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		next, err := tt.Log.Snapshot(ctx, v+1)
		if err == nil && next.Timestamp.Before(cutoff) {
			continue // superseded before the cutoff: outside the window
		}
		for _, f := range snap.Files {
			if _, err := tt.Store.Stat(ctx, txlog.DecodePath(f.Path)); err != nil {
				t.Fatalf("version %d (inside retention) lost file %s: %v", v, f.Path, err)
			}
		}
	}
	if got := tt.ids(t, -1); !slices.Equal(got, seq(110)) {
		t.Fatalf("rows after vacuum: %d", len(got))
	}
	// Orphans stay without FULL; FULL deletes the old one only.
	if _, err := tt.Store.Stat(ctx, "orphan-old.parquet"); err != nil {
		t.Fatal("VACUUM without FULL deleted an orphan")
	}
	beforeFull, _ := tt.Store.List(ctx, "")
	full, err := Vacuum(ctx, tt.Table, VacuumOptions{Retention: retention, Full: true})
	afterFull, _ := tt.Store.List(ctx, "")
	for _, o := range beforeFull {
		if !slices.ContainsFunc(afterFull, func(a storage.ObjectInfo) bool { return a.Key == o.Key }) {
			t.Logf("FULL deleted %s", o.Key)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if full.FilesDeleted != 1 {
		t.Fatalf("FULL deleted %d files, want 1 (the old orphan)", full.FilesDeleted)
	}
	if got := tt.ids(t, -1); !slices.Equal(got, seq(110)) {
		t.Fatalf("rows after FULL: %d", len(got))
	}
	// Longer than the log remembers removed files: refused.
	if _, err := Vacuum(ctx, tt.Table, VacuumOptions{Retention: 31 * 24 * time.Hour, Full: true}); !errors.Is(err, ErrBadArgument) || !strings.Contains(err.Error(), "deletedFileRetentionDuration") {
		t.Fatalf("FULL beyond the tombstone horizon: %v", err)
	}
	for name, want := range map[string]bool{"orphan-old.parquet": false, "orphan-new.parquet": true, "_hidden/keep.parquet": true} {
		_, err := tt.Store.Stat(ctx, name)
		if (err == nil) != want {
			t.Errorf("%s exists=%v after FULL, want %v", name, err == nil, want)
		}
	}
	c, _ := tt.Log.History(ctx, 1)
	if c[0].Info.Operation != "VACUUM END" {
		t.Fatalf("last commit %q, want VACUUM END", c[0].Info.Operation)
	}
	if _, err := Vacuum(ctx, tt.Table, VacuumOptions{Retention: -time.Hour}); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("negative retention: %v", err)
	}
}

func TestVacuumFullRemovesStaleTemps(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t, nil, nil)
	tt.insert(t, 0, 10, "eu")
	stale := filepath.Join(tt.dir, ".tmp-123")
	if err := os.WriteFile(stale, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-10 * 24 * time.Hour)
	_ = os.Chtimes(stale, old, old)
	res, err := Vacuum(ctx, tt.Table, VacuumOptions{Retention: DefaultRetention, Full: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesDeleted != 1 || res.BytesDeleted != 7 {
		t.Fatalf("%+v", res)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("stale temp file still there")
	}
}

func TestAutoCompaction(t *testing.T) {
	tt := newTestTable(t, nil, nil)
	jobs := &Jobs{}
	auto := NewAuto(tt.c, jobs, nil)
	auto.Trigger = 10
	tt.Committer = auto
	for i := 0; i < 25; i++ {
		tt.insert(t, i*4, 4, "eu")
	}
	deadline := time.Now().Add(10 * time.Second)
	for auto.Runs() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	auto.Close()
	if auto.Runs() < 2 {
		t.Fatalf("auto-compaction ran %d times, want ≥ 2 for 25 commits with trigger 10", auto.Runs())
	}
	snap := latest(t, tt)
	if len(snap.Files) >= 10 {
		t.Fatalf("%d live files after auto-compaction", len(snap.Files))
	}
	if got := tt.ids(t, -1); !slices.Equal(got, seq(100)) {
		t.Fatalf("rows after auto-compaction: %d", len(got))
	}
	hist, _ := tt.Log.History(context.Background(), 0)
	var autos int
	for _, c := range hist {
		if c.Info.Operation == "OPTIMIZE" && c.Info.OperationParameters["auto"] == true {
			autos++
		}
	}
	if int64(autos) != auto.Runs() {
		t.Fatalf("%d auto OPTIMIZE commits in the history, %d runs", autos, auto.Runs())
	}
	if st := jobs.List(); len(st) == 0 || st[0].Kind != "auto-compaction" {
		t.Fatalf("jobs: %+v", st)
	}
	// Opting out.
	tt2 := newTestTable(t, nil, map[string]string{"delta.autoOptimize.autoCompact": "false"})
	auto2 := NewAuto(tt2.c, nil, nil)
	auto2.Trigger, auto2.IdleTrigger, auto2.IdleDelay = 3, 2, 20*time.Millisecond
	tt2.Committer = auto2
	for i := 0; i < 6; i++ {
		tt2.insert(t, i, 1, "eu")
	}
	time.Sleep(300 * time.Millisecond) // well past the idle check
	auto2.Close()
	if auto2.Runs() != 0 || len(latest(t, tt2).Files) != 6 {
		t.Fatalf("auto-compaction ran on a table that opted out")
	}
}

func TestBinsTiered(t *testing.T) {
	var files []*txlog.Add
	for i := 0; i < 40; i++ {
		files = append(files, &txlog.Add{Path: fmt.Sprintf("tiny-%d", i), Size: 1000 + int64(i)})
	}
	files = append(files, &txlog.Add{Path: "mid", Size: 50_000}, &txlog.Add{Path: "big", Size: 900_000}, &txlog.Add{Path: "large", Size: 5_000_000})
	count := func(bs [][]*txlog.Add) (n int, mid bool) {
		for _, b := range bs {
			for _, f := range b {
				n++
				mid = mid || f.Path == "mid"
			}
		}
		return
	}
	// Plain bin-packing takes every file under the threshold, the earlier outputs included.
	if n, mid := count(bins(files, 1_000_000, 2_000_000, false)); n != 42 || !mid {
		t.Fatalf("plain bins took %d files (mid %v), want 42 with mid", n, mid)
	}
	// Tiered takes only files of similar size to the median small file.
	if n, mid := count(bins(files, 1_000_000, 2_000_000, true)); n != 40 || mid {
		t.Fatalf("tiered bins took %d files (mid %v), want the 40 tiny ones", n, mid)
	}
	// Bins never exceed the target and never hold one file.
	for _, b := range bins(files, 1_000_000, 10_000, false) {
		var size int64
		for _, f := range b {
			size += f.Size
		}
		if len(b) < 2 || size > 10_000 {
			t.Fatalf("bin of %d files, %d bytes", len(b), size)
		}
	}
}

// TestAutoCompactionWriteAmplification: a stream of tiny commits is compacted in tiers, so
// each row is rewritten a few times, not once per compaction.
func TestAutoCompactionWriteAmplification(t *testing.T) {
	// A small target, so that these few kilobytes count as a large stream (tiers apply
	// above a sixteenth of the target).
	tt := newTestTable(t, nil, map[string]string{"delta.targetFileSize": "65536"})
	auto := NewAuto(tt.c, nil, nil)
	auto.Trigger = 10
	tt.Committer = auto
	const n = 400
	for i := 0; i < n; i++ {
		tt.insert(t, i, 1, "eu")
		// Let the compactor keep up, as it would between the commits of a real stream.
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			auto.mu.Lock()
			busy := false
			for _, st := range auto.tables {
				busy = busy || st.running
			}
			auto.mu.Unlock()
			if !busy {
				break
			}
		}
	}
	auto.Close()
	hist, err := tt.Log.History(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var rewritten int64 // rows read and written again by compactions
	for _, c := range hist {
		if c.Info.Operation != "OPTIMIZE" {
			continue
		}
		for _, a := range c.Actions {
			if a.Remove != nil {
				st, err := txlog.ParseStats(a.Remove.Stats)
				if err != nil || st == nil {
					t.Fatalf("remove without stats: %v", err)
				}
				rewritten += st.NumRecords
			}
		}
	}
	snap := latest(t, tt)
	if got := tt.ids(t, -1); !slices.Equal(got, seq(n)) {
		t.Fatalf("rows: %d", len(got))
	}
	if len(snap.Files) >= 30 {
		t.Fatalf("%d live files", len(snap.Files))
	}
	// In tiers of about 10, a row climbs log10(400) < 3 tiers. Merging everything small
	// each time (no tiers) rewrote each row about 20 times.
	amp := float64(rewritten) / n
	t.Logf("%d live files after %d runs; each row rewritten %.1f times", len(snap.Files), auto.Runs(), amp)
	if amp > 5 {
		t.Fatalf("each row was rewritten %.1f times by auto-compaction", amp)
	}
}

// TestIdleCompaction: a stream that stops below the trigger is compacted once the table has
// been quiet for the idle delay, and the compactor then forgets the table.
func TestIdleCompaction(t *testing.T) {
	tt := newTestTable(t, nil, nil)
	for i := 0; i < 4; i++ { // written before the compactor watches the table
		tt.insert(t, i*3, 3, "eu")
	}
	auto := NewAuto(tt.c, nil, nil)
	auto.IdleTrigger, auto.IdleDelay = 4, 30*time.Millisecond
	tt.Committer = auto
	tt.insert(t, 12, 3, "eu") // the last commit of the stream: below the trigger of 50
	deadline := time.Now().Add(5 * time.Second)
	for auto.Runs() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	auto.mu.Lock()
	left := len(auto.tables)
	auto.mu.Unlock()
	auto.Close()
	if auto.Runs() != 1 || len(latest(t, tt).Files) != 1 {
		t.Fatalf("idle compaction: %d runs, %d files; want 1 and 1", auto.Runs(), len(latest(t, tt).Files))
	}
	if left != 0 {
		t.Fatalf("the compactor still tracks %d tables after they went quiet", left)
	}
	if got := tt.ids(t, -1); !slices.Equal(got, seq(15)) {
		t.Fatalf("rows: %d", len(got))
	}
}
