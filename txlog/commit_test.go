package txlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/storage"
)

func TestCommitWritesCommitInfo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c := newTable(t, nil)
	v := mustCommit(t, c, store, 0, addFile("a.parquet", 1))
	cm, err := NewLog(store).readCommit(ctx, v, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	info := cm.Actions[0].CommitInfo
	if info == nil {
		t.Fatal("commitInfo is not the first action")
	}
	if info.Timestamp == 0 || info.ReadVersion == nil || *info.ReadVersion != 0 || info.IsolationLevel != "Serializable" ||
		info.IsBlindAppend == nil || !*info.IsBlindAppend || !strings.HasPrefix(info.EngineInfo, "lakehoused/") {
		t.Errorf("commitInfo %+v", info)
	}
	v = mustCommit(t, c, store, v, removeFile("a.parquet"), Action{CommitInfo: &CommitInfo{Operation: "DELETE", OperationMetrics: map[string]string{"numDeletedRows": "1"}}})
	cm, _ = NewLog(store).readCommit(ctx, v, time.Time{})
	info = cm.Actions[0].CommitInfo
	if info.Operation != "DELETE" || *info.IsBlindAppend || info.OperationMetrics["numDeletedRows"] != "1" || len(cm.Actions) != 2 {
		t.Errorf("caller commitInfo not kept/completed: %+v (%d actions)", info, len(cm.Actions))
	}
}

func TestCommitTimestampsIncrease(t *testing.T) {
	t.Parallel()
	store, c := newTable(t, nil)
	frozen := time.Now()
	c.Now = func() time.Time { return frozen } // a clock that does not move
	v := int64(0)
	for i := range 5 {
		v = mustCommit(t, c, store, v, addFile(fmt.Sprint(i), 1))
	}
	hist, err := NewLog(store).History(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 6 {
		t.Fatalf("history has %d commits", len(hist))
	}
	for i := 0; i+1 < len(hist); i++ {
		if !hist[i].Timestamp.After(hist[i+1].Timestamp) {
			t.Errorf("v%d at %v is not after v%d at %v", hist[i].Version, hist[i].Timestamp, hist[i+1].Version, hist[i+1].Timestamp)
		}
	}
	if h, _ := NewLog(store).History(context.Background(), 2); len(h) != 2 || h[0].Version != 5 {
		t.Errorf("History(2) = %d commits", len(h))
	}
}

// TestConcurrentBlindAppends: two committers that both read version 0 append; both win,
// at versions 1 and 2, and the table has both files.
func TestConcurrentBlindAppends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := newTable(t, nil)
	c1, c2 := NewStorageCommitter(), NewStorageCommitter()
	v1 := mustCommit(t, c1, store, 0, addFile("one.parquet", 1))
	v2 := mustCommit(t, c2, store, 0, addFile("two.parquet", 1))
	if v1 != 1 || v2 != 2 {
		t.Fatalf("versions %d, %d", v1, v2)
	}
	s, err := NewLog(store).Snapshot(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(paths(s.Files), ","); got != "one.parquet,two.parquet" {
		t.Errorf("files %s", got)
	}
	// The retried commit records the version it read, not the one it landed on.
	cm, _ := NewLog(store).readCommit(ctx, 2, time.Time{})
	if *cm.Info.ReadVersion != 0 {
		t.Errorf("readVersion %d", *cm.Info.ReadVersion)
	}
}

// TestConcurrentAppendRace: many goroutines append from the same read version; all
// succeed with distinct versions.
func TestConcurrentAppendRace(t *testing.T) {
	t.Parallel()
	store, _ := newTable(t, nil)
	const n = 8
	c := NewStorageCommitter()
	var wg sync.WaitGroup
	versions := make(chan int64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Commit(context.Background(), NewLog(store), 0, []Action{addFile(fmt.Sprintf("f%d", i), 1)})
			if err != nil {
				t.Error(err)
			}
			versions <- v
		}()
	}
	wg.Wait()
	close(versions)
	seen := map[int64]bool{}
	for v := range versions {
		if seen[v] {
			t.Errorf("version %d committed twice", v)
		}
		seen[v] = true
	}
	s, err := NewLog(store).Snapshot(context.Background(), -1)
	if err != nil || s.Version != n || len(s.Files) != n {
		t.Fatalf("snapshot v%d with %d files, err %v", s.Version, len(s.Files), err)
	}
}

func TestCommitConflicts(t *testing.T) {
	t.Parallel()
	appendOnly := func(p string) []Action { return []Action{addFile(p, 1)} }
	optimize := []Action{
		{Remove: &Remove{Path: "base1.parquet", DataChange: false}},
		{Remove: &Remove{Path: "base2.parquet", DataChange: false}},
		{Add: &Add{Path: "compacted.parquet", PartitionValues: map[string]string{}, Size: 1, DataChange: false}},
	}
	deleteBase1 := []Action{removeFile("base1.parquet")}
	updateBase1 := []Action{removeFile("base1.parquet"), addFile("base1-rewritten.parquet", 1)}
	updateBase2 := []Action{removeFile("base2.parquet"), addFile("base2-rewritten.parquet", 1)}
	alter := []Action{createActions(map[string]string{"x": "y"})[1]}
	notBlind := false
	checkedInsert := []Action{{CommitInfo: &CommitInfo{Operation: "WRITE", IsBlindAppend: &notBlind}}, addFile("m.parquet", 1)}
	txnA := []Action{addFile("s1.parquet", 1), {Txn: &Txn{AppID: "stream-a", Version: 1}}}
	txnA2 := []Action{addFile("s2.parquet", 1), {Txn: &Txn{AppID: "stream-a", Version: 2}}}
	cases := []struct {
		name     string
		winner   []Action
		mine     []Action
		conflict string // "" = must succeed
	}{
		{"append vs append", appendOnly("w.parquet"), appendOnly("m.parquet"), ""},
		{"optimize then append", optimize, appendOnly("m.parquet"), ""},
		{"append then optimize", appendOnly("w.parquet"), optimize, ""},
		{"append then delete", appendOnly("w.parquet"), deleteBase1, "added file w.parquet"},
		{"delete then delete same file", deleteBase1, deleteBase1, "removed file base1.parquet"},
		{"update vs update other file", updateBase2, updateBase1, "added file base2-rewritten.parquet"},
		{"optimize then delete", optimize, deleteBase1, "removed file base1.parquet"},
		{"delete then optimize", deleteBase1, optimize, "removed file base1.parquet"},
		{"metadata change then append", alter, appendOnly("m.parquet"), "changed the table metadata"},
		{"same txn appId", txnA, txnA2, "same application id \"stream-a\""},
		// An insert that read data (a primary-key check) says so and is not retried blindly.
		{"append then checked insert", appendOnly("w.parquet"), checkedInsert, "added file w.parquet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store, c := newTable(t, nil)
			base := mustCommit(t, c, store, 0, addFile("base1.parquet", 1), addFile("base2.parquet", 1))
			mustCommit(t, NewStorageCommitter(), store, base, tc.winner...)
			v, err := NewStorageCommitter().Commit(context.Background(), NewLog(store), base, tc.mine)
			if tc.conflict == "" {
				if err != nil || v != base+2 {
					t.Fatalf("want success at %d, got v=%d err=%v", base+2, v, err)
				}
				return
			}
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("want ErrConflict, got v=%d err=%v", v, err)
			}
			msg := err.Error()
			for _, want := range []string{tc.conflict, fmt.Sprintf("version %d", base+1), "retry the transaction", store.URL()} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			// A conflict changes nothing.
			if _, err := store.Stat(context.Background(), commitKey(base+2)); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("conflicting commit was written: %v", err)
			}
		})
	}
}

func TestConcurrentCreate(t *testing.T) {
	t.Parallel()
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := NewStorageCommitter().Commit(context.Background(), NewLog(store), -1, createActions(nil))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrTableExists) || !strings.Contains(err.Error(), "already"):
			t.Errorf("loser error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creators won", ok)
	}
}

func TestCommitRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c := newTable(t, nil)
	cases := []struct {
		name    string
		read    int64
		actions []Action
		want    error
		substr  string
	}{
		{"create without metadata", -1, createActions(nil)[:1], nil, "needs a protocol and a metaData"},
		{"bad schema", 0, []Action{{MetaData: &Metadata{ID: "x", SchemaString: "{"}}}, nil, "invalid schemaString"},
		{"writer version 7", 0, []Action{{Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 7, WriterFeatures: []string{"checkConstraints"}}}}, ErrUnsupportedFeature, "checkConstraints"},
		{"future read version", 5, []Action{addFile("x", 1)}, ErrVersionNotFound, "latest version is 0"},
		{"add without path", 0, []Action{{Add: &Add{}}}, nil, "need a path"},
	}
	for _, tc := range cases {
		_, err := c.Commit(ctx, NewLog(store), tc.read, tc.actions)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("%s: err = %v, want %v containing %q", tc.name, err, tc.want, tc.substr)
		}
	}
	// A table that needs a newer writer is read-only for us.
	store.PutIfAbsent(ctx, commitKey(1), []byte(`{"protocol":{"minReaderVersion":1,"minWriterVersion":4}}`+"\n"))
	_, err := NewStorageCommitter().Commit(ctx, NewLog(store), 1, []Action{addFile("x", 1)})
	if !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), "writer version 4") {
		t.Errorf("commit to writer-4 table: %v", err)
	}
}

// failingCheckpoints refuses to store checkpoints, like a full disk would.
type failingCheckpoints struct{ storage.Store }

func (f failingCheckpoints) Put(ctx context.Context, key string, data []byte) error {
	if strings.Contains(key, "checkpoint") {
		return errors.New("disk full")
	}
	return f.Store.Put(ctx, key, data)
}

func TestFailedCheckpointKeepsCommit(t *testing.T) {
	t.Parallel()
	inner, _ := newTable(t, map[string]string{"delta.checkpointInterval": "1"})
	store := failingCheckpoints{inner}
	var logged strings.Builder
	c := NewStorageCommitter()
	c.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	v, err := c.Commit(context.Background(), NewLog(store), 0, []Action{addFile("a", 1)})
	if err != nil || v != 1 {
		t.Fatalf("commit: v=%d err=%v", v, err)
	}
	c.Wait()
	if !strings.Contains(logged.String(), "checkpoint failed") || !strings.Contains(logged.String(), "disk full") {
		t.Errorf("checkpoint failure not logged: %s", logged.String())
	}
	if s, err := NewLog(inner).Snapshot(context.Background(), -1); err != nil || s.Version != 1 {
		t.Errorf("table after failed checkpoint: %v", err)
	}
}

// BenchmarkCommitAndRefresh measures one blind append through StorageCommitter on a local
// table (including fsyncs) followed by a reader's snapshot refresh.
func BenchmarkCommitAndRefresh(b *testing.B) {
	ctx := context.Background()
	store, err := storage.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c := NewStorageCommitter()
	c.CheckpointInterval = 1 << 30
	log := NewLog(store)
	if _, err := c.Commit(ctx, log, -1, createActions(nil)); err != nil {
		b.Fatal(err)
	}
	reader := NewLog(store)
	v := int64(0)
	for i := 0; b.Loop(); i++ {
		if v, err = c.Commit(ctx, log, v, []Action{addFile(fmt.Sprintf("f%d.parquet", i), 1)}); err != nil {
			b.Fatal(err)
		}
		if s, err := reader.Snapshot(ctx, -1); err != nil || s.Version != v {
			b.Fatal(err)
		}
	}
}

// TestCheckpointPacing: background checkpoints come at multiples of the interval, except
// when the table has spent more than a tenth of the time since the last one checkpointing.
func TestCheckpointPacing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c := newTable(t, map[string]string{"delta.checkpointInterval": "2"})
	log := NewLog(store)
	hasCheckpoint := func(v int64) bool {
		_, err := store.Stat(ctx, fmt.Sprintf("_delta_log/%020d.checkpoint.parquet", v))
		return err == nil
	}
	commitTo := func(v int64) {
		for cur := log.cached().Version; cur < v; cur++ {
			if _, err := c.Commit(ctx, log, cur, []Action{addFile(fmt.Sprintf("f%d.parquet", cur), 1)}); err != nil {
				t.Fatal(err)
			}
			c.Wait()
		}
	}
	if _, err := log.Snapshot(ctx, -1); err != nil {
		t.Fatal(err)
	}
	commitTo(2)
	if !hasCheckpoint(2) {
		t.Fatal("no checkpoint at the first interval")
	}
	// Pretend the last checkpoint took an hour: the next intervals are skipped.
	c.mu.Lock()
	c.pacing[store.URL()].took = time.Hour
	c.mu.Unlock()
	commitTo(6)
	if hasCheckpoint(4) || hasCheckpoint(6) {
		t.Fatal("checkpoints written although the table is over its checkpoint time budget")
	}
	// Once enough time has passed the next multiple is checkpointed again.
	c.mu.Lock()
	c.pacing[store.URL()].took = time.Millisecond
	c.mu.Unlock()
	time.Sleep(10 * time.Millisecond)
	commitTo(8)
	if !hasCheckpoint(8) {
		t.Fatal("no checkpoint once the budget allows one")
	}
	// Readers open the table from the newest checkpoint plus the commits after it.
	if s, err := NewLog(store).Snapshot(ctx, -1); err != nil || s.Version != 8 || len(s.Files) != 8 {
		t.Fatalf("reopen: %v %+v", err, s)
	}
}

// TestAfterDataDurable: the commit file is published only after the data wait succeeds,
// never when it fails, and the wait runs once even when the commit is retried.
func TestAfterDataDurable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c := newTable(t, nil)
	log := NewLog(store)
	visible := func(v int64) bool {
		_, err := store.Stat(ctx, commitKey(v))
		return err == nil
	}
	release := make(chan struct{})
	var sawInvisible atomic.Bool
	done := make(chan error, 1)
	go func() {
		_, err := c.Commit(ctx, log, 0, []Action{addFile("a.parquet", 1)}, AfterDataDurable(func() error {
			<-release
			sawInvisible.Store(!visible(1))
			return nil
		}))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if visible(1) {
		t.Fatal("commit visible before its data is durable")
	}
	close(release)
	if err := <-done; err != nil || !sawInvisible.Load() || !visible(1) {
		t.Fatalf("commit: err=%v invisible-during-wait=%v visible-after=%v", err, sawInvisible.Load(), visible(1))
	}

	// A failed data write publishes nothing and returns the data error itself.
	dataErr := errors.New("disk full writing data")
	_, err := c.Commit(ctx, log, 1, []Action{addFile("b.parquet", 1)}, AfterDataDurable(func() error { return dataErr }))
	if !errors.Is(err, dataErr) || visible(2) {
		t.Fatalf("failed data: err=%v, version 2 visible=%v", err, visible(2))
	}
	if entries, _ := store.List(ctx, "_delta_log/"); len(entries) != 2 {
		t.Fatalf("staged commit left behind: %v", entries)
	}

	// Losing the race to a non-conflicting commit retries without waiting again.
	mustCommit(t, NewStorageCommitter(), store, 1, addFile("other.parquet", 1))
	calls := 0
	v, err := c.Commit(ctx, log, 1, []Action{addFile("c.parquet", 1)}, AfterDataDurable(func() error { calls++; return nil }))
	if err != nil || v != 3 || calls != 1 {
		t.Fatalf("retried commit: v=%d err=%v waits=%d", v, err, calls)
	}
}

// TestWriteSerializable: an UPDATE committed with WriteSerializable goes through over
// concurrent appends (checked ones included) but not over removes or metadata changes, and
// its check can refuse the appends.
func TestWriteSerializable(t *testing.T) {
	t.Parallel()
	notBlind := false
	checkedInsert := []Action{{CommitInfo: &CommitInfo{Operation: "WRITE", IsBlindAppend: &notBlind}}, addFile("m.parquet", 1)}
	updateBase1 := []Action{removeFile("base1.parquet"), addFile("base1-rewritten.parquet", 1)}
	cases := []struct {
		name     string
		winners  [][]Action
		refuse   bool
		conflict string
	}{
		{"over a blind append", [][]Action{{addFile("w.parquet", 1)}}, false, ""},
		{"over two appends", [][]Action{{addFile("w.parquet", 1)}, checkedInsert}, false, ""},
		{"check refuses", [][]Action{checkedInsert}, true, "duplicate"},
		// Appends that read the table are not lakehoused's key-checked inserts: they conflict.
		{"over an add-only restore", [][]Action{{{CommitInfo: &CommitInfo{Operation: "RESTORE", IsBlindAppend: &notBlind}}, addFile("old.parquet", 1)}}, false, "added file old.parquet"},
		{"over another engine's reading insert", [][]Action{{{CommitInfo: &CommitInfo{Operation: "WRITE", IsBlindAppend: &notBlind, EngineInfo: "Apache-Spark/3.5 Delta-Lake/3.2"}}, addFile("s.parquet", 1)}}, false, "added file s.parquet"},
		{"over a delete of another file", [][]Action{{removeFile("base2.parquet")}}, false, "removed file base2.parquet"},
		{"over a delete of the same file", [][]Action{{removeFile("base1.parquet")}}, false, "removed file base1.parquet"},
		{"over a metadata change", [][]Action{{createActions(map[string]string{"x": "y"})[1]}}, false, "metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store, c := newTable(t, nil)
			base := mustCommit(t, c, store, 0, addFile("base1.parquet", 1), addFile("base2.parquet", 1))
			v := base
			for _, w := range tc.winners {
				v = mustCommit(t, NewStorageCommitter(), store, v, w...)
			}
			var seen int
			check := func(appends []Commit) error {
				seen = len(appends)
				if tc.refuse {
					return fmt.Errorf("%w: duplicate key 7", ErrConflict)
				}
				return nil
			}
			got, err := NewStorageCommitter().Commit(context.Background(), NewLog(store), base, updateBase1, WriteSerializable(check))
			if tc.conflict == "" {
				if err != nil || got != v+1 || seen != len(tc.winners) {
					t.Fatalf("want success at %d after checking %d appends, got v=%d err=%v seen=%d", v+1, len(tc.winners), got, err, seen)
				}
				hist, _ := NewLog(store).History(context.Background(), 1)
				if hist[0].Info.IsolationLevel != "WriteSerializable" {
					t.Fatalf("isolationLevel %q", hist[0].Info.IsolationLevel)
				}
				return
			}
			if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), tc.conflict) {
				t.Fatalf("want ErrConflict mentioning %q, got %v", tc.conflict, err)
			}
		})
	}
}
