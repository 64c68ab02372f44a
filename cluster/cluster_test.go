package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// testCluster is n nodes on in-memory Raft transports sharing one local warehouse folder,
// each with its own committer, as daemons on separate machines sharing S3 would be.
type testCluster struct {
	t      testing.TB
	shared storage.Store // the table's folder, as every node sees it
	others sync.Map      // other tables' stores by URL (in memory)
	full   atomic.Bool   // publishing fails, as on a full disk
	// failing, when set, names the one table whose publication fails: "unknown" as a
	// write whose outcome is unknown, else as a full disk.
	failing atomic.Value // [2]string{url, how}
	nodes   []*Node
	trans   []*raft.InmemTransport
	dirs    []string
	mu      sync.Mutex
	down    map[int]bool
}

func newCluster(t testing.TB, size int) *testCluster {
	t.Helper()
	shared, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, shared: shared, down: map[int]bool{}}
	for i := range size {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("node%d", i)))
		c.trans = append(c.trans, tr)
		c.dirs = append(c.dirs, t.TempDir())
	}
	for i := range size {
		for j := range size {
			if i != j {
				c.trans[i].Connect(c.trans[j].LocalAddr(), c.trans[j])
			}
		}
	}
	for i := range size {
		c.nodes = append(c.nodes, c.open(i, i == 0))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.nodes[0].WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < size; i++ {
		if err := c.nodes[0].AddVoter(c.nodes[i].ID(), c.nodes[i].Addr()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for i, n := range c.nodes {
			if !c.down[i] {
				n.Shutdown()
			}
		}
	})
	return c
}

func (c *testCluster) open(i int, bootstrap bool) *Node {
	c.t.Helper()
	n, err := Open(Config{
		ID: fmt.Sprintf("n%d", i), Dir: c.dirs[i], Transport: c.trans[i], Bootstrap: bootstrap,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond, SnapshotThreshold: 64,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Publish: PublishTo(func(_ context.Context, url string) (storage.Store, error) {
			if c.full.Load() {
				return nil, errors.New("no space left on device")
			}
			if f, _ := c.failing.Load().([2]string); f[0] == url {
				if f[1] == "unknown" {
					return nil, fmt.Errorf("%w: syncing the directory failed", storage.ErrOutcomeUnknown)
				}
				return nil, errors.New("no space left on device")
			}
			if url == c.shared.URL() {
				return c.shared, nil
			}
			s, _ := c.others.LoadOrStore(url, storage.NewMem(url))
			return s.(storage.Store), nil
		}),
		Forward: func(ctx context.Context, leaderID, _ string, cmd []byte) error {
			c.mu.Lock()
			var leader *Node
			for k, n := range c.nodes {
				if n.ID() == leaderID && !c.down[k] {
					leader = n
				}
			}
			c.mu.Unlock()
			if leader == nil {
				return ErrNotLeader
			}
			return leader.Apply(ctx, cmd)
		},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// kill stops node i abruptly: cut off from the others, then shut down.
func (c *testCluster) kill(i int) {
	c.mu.Lock()
	c.down[i] = true
	c.mu.Unlock()
	c.trans[i].DisconnectAll()
	for j, tr := range c.trans {
		if j != i {
			tr.Disconnect(c.trans[i].LocalAddr())
		}
	}
	c.nodes[i].Shutdown()
}

func (c *testCluster) leader() int {
	for i, n := range c.nodes {
		if !c.down[i] && n.IsLeader() {
			return i
		}
	}
	return -1
}

// waitSame waits until the live nodes have applied the same state.
func (c *testCluster) waitSame() {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var first string
		same := true
		for i, n := range c.nodes {
			if c.down[i] {
				continue
			}
			d := n.Digest()
			if first == "" {
				first = d
			}
			same = same && d == first
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatal("the nodes' states did not converge")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const schema = `{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}}]}`

func create(t testing.TB, n *Node, shared storage.Store) {
	t.Helper()
	actions := []txlog.Action{
		{Protocol: &txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		{MetaData: &txlog.Metadata{ID: "11111111-2222-3333-4444-555555555555", Format: txlog.Format{Provider: "parquet"}, SchemaString: schema}},
	}
	if v, err := txlog.NewStorageCommitter().Commit(context.Background(), txlog.NewLog(n.Wrap(shared)), -1, actions); err != nil || v != 0 {
		t.Fatalf("create: %d %v", v, err)
	}
}

func add(path string) txlog.Action {
	return txlog.Action{Add: &txlog.Add{Path: path, Size: 100, ModificationTime: 1700000000000, DataChange: true}}
}

// writer appends one file per commit through node i until stop, recording acknowledged files.
func (c *testCluster) writer(ctx context.Context, i, id int, acked *sync.Map, count *atomic.Int64, stop <-chan struct{}) {
	com := txlog.NewStorageCommitter()
	com.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	log := txlog.NewLog(c.nodes[i].Wrap(c.shared))
	for k := 0; ; k++ {
		select {
		case <-stop:
			return
		default:
		}
		c.mu.Lock()
		dead := c.down[i]
		c.mu.Unlock()
		if dead {
			return
		}
		read, err := log.LatestVersion(ctx)
		if err != nil {
			continue
		}
		path := fmt.Sprintf("n%d-%d-%d.parquet", i, id, k)
		var opts []txlog.CommitOption
		if k%2 == 0 { // half the commits are staged while their "data" is made durable
			opts = append(opts, txlog.AfterDataDurable(func() error { return nil }))
		}
		if _, err := com.Commit(ctx, log, read, []txlog.Action{add(path)}, opts...); err == nil {
			acked.Store(path, true)
			count.Add(1)
		}
	}
}

// writers is two writers per node, running until stop.
type writers struct {
	acked sync.Map
	count atomic.Int64
	done  chan struct{}
	wg    sync.WaitGroup
}

func (c *testCluster) startWriters() *writers {
	w := &writers{done: make(chan struct{})}
	for i := range 2 * len(c.nodes) { // two writers per node
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			c.writer(context.Background(), i%len(c.nodes), i/len(c.nodes), &w.acked, &w.count, w.done)
		}()
	}
	return w
}

func (w *writers) stop() {
	close(w.done)
	w.wg.Wait()
}

// check reads the table: versions contiguous, every acknowledged file present exactly once.
func (c *testCluster) check(acked *sync.Map) int {
	c.t.Helper()
	snap, err := txlog.NewLog(c.shared).Snapshot(context.Background(), -1)
	if err != nil {
		c.t.Fatal(err)
	}
	seen := map[string]int{}
	for _, f := range snap.Files {
		seen[f.Path]++
	}
	for p, k := range seen {
		if k != 1 {
			c.t.Errorf("file %s is in the table %d times", p, k)
		}
	}
	missing := 0
	acked.Range(func(k, _ any) bool {
		if seen[k.(string)] != 1 {
			missing++
			c.t.Errorf("acknowledged file %s is not in the table", k)
		}
		return true
	})
	if int64(len(snap.Files)) != snap.Version {
		c.t.Errorf("version %d holds %d files: one commit per file expected", snap.Version, len(snap.Files))
	}
	return len(snap.Files)
}

func TestCommitsFromEveryNode(t *testing.T) {
	c := newCluster(t, 3)
	create(t, c.nodes[1], c.shared) // created through a follower
	w := c.startWriters()
	time.Sleep(1500 * time.Millisecond)
	w.stop()
	files := c.check(&w.acked)
	if w.count.Load() < 30 || int64(files) != w.count.Load() {
		t.Fatalf("%d commits acknowledged, %d files in the table", w.count.Load(), files)
	}
	c.waitSame()
	if v, ok := c.nodes[2].Known(c.shared.URL()); !ok || v != int64(files) {
		t.Fatalf("the cluster knows version %d (%v), the table has %d", v, ok, files)
	}
	t.Logf("%d commits from 3 nodes in 1.5 s", w.count.Load())
}

func TestLeaderKilledWritesContinue(t *testing.T) {
	c := newCluster(t, 3)
	create(t, c.nodes[0], c.shared)
	w := c.startWriters()
	time.Sleep(500 * time.Millisecond)
	old := c.leader()
	before := w.count.Load()
	killed := time.Now()
	c.kill(old)
	var elected time.Duration
	for time.Since(killed) < 3*time.Second {
		if l := c.leader(); l >= 0 && l != old {
			elected = time.Since(killed)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if elected == 0 {
		t.Fatal("no new leader within 3 s")
	}
	time.Sleep(700 * time.Millisecond)
	w.stop()
	if w.count.Load() <= before {
		t.Fatalf("no commits after the leader died (%d before, %d after)", before, w.count.Load())
	}
	c.check(&w.acked)
	c.waitSame()
	t.Logf("new leader after %v; %d commits before the kill, %d in all", elected, before, w.count.Load())
}

func TestRatifyIsIdempotentAndAtomic(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	n := c.nodes[2] // a follower
	one := Commit{Table: "mem://a", Version: 0, Data: []byte("a0"), Base: -1}
	if err := n.Ratify(ctx, []Commit{one}); err != nil {
		t.Fatal(err)
	}
	// The same commit again (a retry after an ambiguous failure) is success.
	if err := n.Ratify(ctx, []Commit{one}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// Other bytes at a taken version conflict.
	if err := n.Ratify(ctx, []Commit{{Table: "mem://a", Version: 0, Data: []byte("other"), Base: -1}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second version 0: %v", err)
	}
	// A gap is refused.
	if err := n.Ratify(ctx, []Commit{{Table: "mem://a", Version: 5, Data: []byte("a5")}}); err == nil || errors.Is(err, ErrConflict) {
		t.Fatalf("version 5 after 0: %v", err)
	}
	// Two tables at once: all or nothing.
	err := n.Ratify(ctx, []Commit{{Table: "mem://b", Version: 0, Data: []byte("b0"), Base: -1}, {Table: "mem://a", Version: 0, Data: []byte("x"), Base: -1}})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("a transaction with a conflicting part: %v", err)
	}
	if _, ok := n.Known("mem://b"); ok {
		t.Fatal("the other table of a refused transaction was ratified")
	}
	if err := n.Ratify(ctx, []Commit{{Table: "mem://b", Version: 0, Data: []byte("b0"), Base: -1}, {Table: "mem://a", Version: 1, Data: []byte("a1")}}); err != nil {
		t.Fatal(err)
	}
	c.waitSame()
	for _, node := range c.nodes {
		if va, _ := node.Known("mem://a"); va != 1 {
			t.Fatalf("node %s: table a at %d", node.ID(), va)
		}
	}
}

func TestRestartRecoversState(t *testing.T) {
	c := newCluster(t, 3)
	create(t, c.nodes[0], c.shared)
	com := txlog.NewStorageCommitter()
	log := txlog.NewLog(c.nodes[1].Wrap(c.shared))
	for k := range 150 { // past the snapshot threshold (64 entries)
		if _, err := com.Commit(context.Background(), log, int64(k), []txlog.Action{add(fmt.Sprintf("f%d.parquet", k))}); err != nil {
			t.Fatal(err)
		}
	}
	c.waitSame()
	want := c.nodes[2].Digest()
	c.kill(2)
	c.mu.Lock()
	c.down[2] = false
	c.mu.Unlock()
	for j := range c.trans {
		if j != 2 {
			c.trans[2].Connect(c.trans[j].LocalAddr(), c.trans[j])
			c.trans[j].Connect(c.trans[2].LocalAddr(), c.trans[2])
		}
	}
	c.nodes[2] = c.open(2, false)
	c.waitSame()
	if got := c.nodes[2].Digest(); got != want {
		t.Fatalf("after restart the state differs:\n%s\n%s", got, want)
	}
	if v, _ := c.nodes[2].Known(c.shared.URL()); v != 150 {
		t.Fatalf("restarted node knows version %d, want 150", v)
	}
}

// TestWritersOutsideTheCluster: another engine commits to the table in storage directly
// (put-if-absent of the commit files, as Delta writers do). The cluster's commits lose
// those races like any writer and retry after them; nothing is lost or doubled.
func TestWritersOutsideTheCluster(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	create(t, c.nodes[0], c.shared)
	com := txlog.NewStorageCommitter()
	inside := txlog.NewLog(c.nodes[1].Wrap(c.shared))
	outside := txlog.NewLog(c.shared) // the other engine: straight to storage
	var acked sync.Map
	commitVia := func(l *txlog.Log, path string) {
		t.Helper()
		read, err := l.LatestVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := com.Commit(ctx, l, read, []txlog.Action{add(path)}); err != nil {
			t.Fatalf("commit %s: %v", path, err)
		}
		acked.Store(path, true)
	}
	commitVia(inside, "in-1.parquet")
	// The outside writer takes the version the inside one is about to use, then two more.
	stale, _ := inside.LatestVersion(ctx)
	commitVia(outside, "out-1.parquet")
	if _, err := com.Commit(ctx, inside, stale, []txlog.Action{add("in-2.parquet")}); err != nil {
		t.Fatalf("commit after an outside writer took the version: %v", err)
	}
	acked.Store("in-2.parquet", true)
	commitVia(outside, "out-2.parquet")
	commitVia(outside, "out-3.parquet")
	commitVia(inside, "in-3.parquet")
	if n := c.check(&acked); n != 6 {
		t.Fatalf("%d files, want 6", n)
	}
	c.waitSame()
}

// TestForgetLetsAFolderBeReused: a dropped table's folder can hold a new table.
func TestForgetLetsAFolderBeReused(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	create(t, c.nodes[0], c.shared)
	objs, _ := c.shared.List(ctx, "")
	for _, o := range objs {
		if err := c.shared.Delete(ctx, o.Key); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.nodes[2].Forget(ctx, c.shared.URL()); err != nil {
		t.Fatal(err)
	}
	c.waitSame()
	create(t, c.nodes[1], c.shared)
}

// TestUnpublishedCommitIsUndone: a commit that cannot be written out fails and leaves no
// trace; once storage works again the version goes to the next commit.
func TestUnpublishedCommitIsUndone(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	create(t, c.nodes[0], c.shared)
	com := txlog.NewStorageCommitter()
	log := txlog.NewLog(c.nodes[1].Wrap(c.shared))
	c.full.Store(true)
	if _, err := com.Commit(ctx, log, 0, []txlog.Action{add("lost.parquet")}); err == nil {
		t.Fatal("a commit that could not be published succeeded")
	}
	c.full.Store(false)
	c.waitSame() // the undo reaches the followers
	if v, _ := c.nodes[1].Known(c.shared.URL()); v != 0 {
		t.Fatalf("the failed commit is still ratified (latest %d)", v)
	}
	var acked sync.Map
	if _, err := com.Commit(ctx, log, 0, []txlog.Action{add("kept.parquet")}); err != nil {
		t.Fatal(err)
	}
	acked.Store("kept.parquet", true)
	if n := c.check(&acked); n != 1 {
		t.Fatalf("%d files, want 1", n)
	}
	c.waitSame()
}

// TestAtomicCommitsAcrossTables: transactions over two tables, from every node at once, are
// ratified together or not at all: version k of one table and version k of the other come
// from the same transaction. A transaction whose other table fails commits nothing.
func TestAtomicCommitsAcrossTables(t *testing.T) {
	c := newCluster(t, 3)
	a, b := c.shared, storage.NewMem("mem://other-table")
	c.others.Store(b.URL(), b)
	create(t, c.nodes[0], a)
	create(t, c.nodes[0], b)
	ctx := context.Background()
	transfer := func(n *Node, id string) error {
		actx, leave := n.Atomic(ctx, 2)
		errs := make(chan error, 2)
		for _, s := range []storage.Store{a, b} {
			go func() {
				log := txlog.NewLog(n.Wrap(s))
				com := txlog.NewStorageCommitter()
				com.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
				read, err := log.LatestVersion(actx)
				if err == nil {
					_, err = com.Commit(actx, log, read, []txlog.Action{add(id)})
				}
				leave(err)
				errs <- err
			}()
		}
		return errors.Join(<-errs, <-errs)
	}
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 15 {
				if transfer(n, fmt.Sprintf("t-%d-%d", i, k)) == nil {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()

	// One side fails before proposing: the other side must not commit.
	actx, leave := c.nodes[1].Atomic(ctx, 2)
	go leave(errors.New("the data files could not be written"))
	log := txlog.NewLog(c.nodes[1].Wrap(a))
	read, _ := log.LatestVersion(ctx)
	if _, err := txlog.NewStorageCommitter().Commit(actx, log, read, []txlog.Action{add("aborted")}); err == nil || !strings.Contains(err.Error(), "could not be written") {
		t.Fatalf("the half of an aborted transaction: %v", err)
	}

	sa, err := txlog.NewLog(a).Snapshot(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := txlog.NewLog(b).Snapshot(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	if sa.Version != sb.Version || sa.Version != ok.Load() {
		t.Fatalf("%d transactions acknowledged; the tables are at versions %d and %d", ok.Load(), sa.Version, sb.Version)
	}
	ca, _ := txlog.NewLog(a).History(ctx, 0)
	cb, _ := txlog.NewLog(b).History(ctx, 0)
	added := func(c txlog.Commit) string {
		for _, a := range c.Actions {
			if a.Add != nil {
				return a.Add.Path
			}
		}
		return ""
	}
	if len(ca) != len(cb) {
		t.Fatalf("histories of %d and %d versions", len(ca), len(cb))
	}
	for k := range ca {
		if ca[k].Version != cb[k].Version || added(ca[k]) != added(cb[k]) {
			t.Fatalf("version %d of one table and %d of the other come from different transactions (%q, %q)",
				ca[k].Version, cb[k].Version, added(ca[k]), added(cb[k]))
		}
	}
	t.Logf("%d two-table transactions from 3 nodes, each in one log entry", ok.Load())
}

// TestUnwrittenCommitsAreKept: a commit whose write has an unknown outcome, and a
// multi-table transaction one of whose tables cannot be written, are not undone: their
// committers are told the outcome is unknown (so they keep their data files), and the
// versions are written as soon as storage allows, before any later version.
func TestUnwrittenCommitsAreKept(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	other := storage.NewMem("mem://other-table")
	c.others.Store(other.URL(), other)
	create(t, c.nodes[0], c.shared)
	create(t, c.nodes[0], other)
	com := txlog.NewStorageCommitter()
	commit := func(n *Node, s storage.Store, path string) error {
		log := txlog.NewLog(n.Wrap(s))
		read, err := log.LatestVersion(ctx)
		if err == nil {
			_, err = com.Commit(ctx, log, read, []txlog.Action{add(path)})
		}
		return err
	}

	c.failing.Store([2]string{c.shared.URL(), "unknown"})
	if err := commit(c.nodes[1], c.shared, "maybe.parquet"); !errors.Is(err, storage.ErrOutcomeUnknown) {
		t.Fatalf("a write of unknown outcome: %v", err)
	}
	if v, _ := c.nodes[0].Known(c.shared.URL()); v != 1 {
		t.Fatalf("the commit was undone (latest %d)", v)
	}
	c.failing.Store([2]string{})
	if err := commit(c.nodes[2], c.shared, "next.parquet"); err != nil {
		t.Fatal(err)
	}
	var acked sync.Map
	acked.Store("maybe.parquet", true)
	acked.Store("next.parquet", true)
	if n := c.check(&acked); n != 2 {
		t.Fatalf("%d files, want 2", n)
	}

	// Two tables in one transaction; the second cannot be written.
	c.failing.Store([2]string{other.URL(), "full"})
	actx, leave := c.nodes[1].Atomic(ctx, 2)
	errs := make(chan error, 2)
	for _, s := range []storage.Store{c.shared, other} {
		go func() {
			log := txlog.NewLog(c.nodes[1].Wrap(s))
			read, err := log.LatestVersion(actx)
			if err == nil {
				_, err = com.Commit(actx, log, read, []txlog.Action{add("both.parquet")})
			}
			leave(err)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, storage.ErrOutcomeUnknown) {
			t.Fatalf("a transaction written on one table only: %v", err)
		}
	}
	c.failing.Store([2]string{})
	if err := commit(c.nodes[0], other, "later.parquet"); err != nil {
		t.Fatal(err)
	}
	snap, err := txlog.NewLog(other).Snapshot(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range snap.Files {
		paths = append(paths, f.Path)
	}
	if !slices.Contains(paths, "both.parquet") || !slices.Contains(paths, "later.parquet") || snap.Version != 2 {
		t.Fatalf("the other table at version %d holds %v; the transaction's version first, then the later one", snap.Version, paths)
	}
	c.waitSame()
}
