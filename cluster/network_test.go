package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// freeAddrs reserves n loopback addresses (listen, note, close).
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l.Addr().String())
		l.Close()
	}
	return out
}

// tcpNode opens a node on a real port of its own, publishing into shared.
func tcpNode(t *testing.T, shared storage.Store, cfg Config) (*Node, error) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = 150*time.Millisecond, 150*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Publish = PublishTo(func(context.Context, string) (storage.Store, error) { return shared, nil })
	n, err := Open(cfg)
	if err == nil {
		t.Cleanup(n.Shutdown)
	}
	return n, err
}

// TestNetworkCluster: three nodes started together with BootstrapExpect find each other
// over TCP, commit through every node (followers forward to the leader), survive the
// leader's shutdown, and refuse bad members.
func TestNetworkCluster(t *testing.T) {
	shared, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addrs := freeAddrs(t, 3)
	nodes := make([]*Node, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = tcpNode(t, shared, Config{ID: fmt.Sprintf("n%d", i), Addr: addrs[i], Join: addrs, BootstrapExpect: 3, Identity: "wh-1"})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nodes[0].WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	create(t, nodes[1], shared)

	// Writers on every node; followers forward their commits to the leader.
	var acked sync.Map
	commit := func(n *Node, path string) error {
		log := txlog.NewLog(n.Wrap(shared))
		com := txlog.NewStorageCommitter()
		com.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		read, err := log.LatestVersion(ctx)
		if err != nil {
			return err
		}
		_, err = com.Commit(ctx, log, read, []txlog.Action{add(path)}, txlog.AfterDataDurable(func() error { return nil }))
		if err == nil {
			acked.Store(path, true)
		}
		return err
	}
	for i, n := range nodes {
		for k := range 5 {
			if err := commit(n, fmt.Sprintf("a-%d-%d", i, k)); err != nil {
				t.Fatalf("commit through node %d: %v", i, err)
			}
		}
	}

	members, err := nodes[2].Members(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	for _, m := range members {
		if m.Status == nil || !m.Voter {
			t.Fatalf("member %+v: a voter that answers expected", m)
		}
		if m.Leader {
			leaders++
		}
	}
	if len(members) != 3 || leaders != 1 {
		t.Fatalf("members %+v: 3 with one leader expected", members)
	}

	// Bad members are refused with errors that say why.
	_, err = tcpNode(t, shared, Config{ID: "n9", Addr: freeAddrs(t, 1)[0], Join: addrs[:1], Identity: "another-warehouse", JoinTimeout: 5 * time.Second})
	if !errors.Is(err, ErrWarehouse) || !strings.Contains(err.Error(), "shared") {
		t.Fatalf("a node with another warehouse: %v", err)
	}
	_, err = tcpNode(t, shared, Config{ID: "n1", Addr: freeAddrs(t, 1)[0], Join: addrs[:1], Identity: "wh-1", JoinTimeout: 5 * time.Second})
	if !errors.Is(err, ErrMembership) || !strings.Contains(err.Error(), "already in the cluster") {
		t.Fatalf("a duplicate node id: %v", err)
	}
	start := time.Now()
	_, err = tcpNode(t, shared, Config{ID: "n8", Addr: freeAddrs(t, 1)[0], Join: freeAddrs(t, 1), Identity: "wh-1", JoinTimeout: 700 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no cluster answered") || time.Since(start) > 5*time.Second {
		t.Fatalf("joining nobody: %v after %v", err, time.Since(start))
	}

	// The leader goes; the others elect a new one and writes continue through both.
	lead := -1
	for i, n := range nodes {
		if n.IsLeader() {
			lead = i
		}
	}
	nodes[lead].Shutdown()
	var rest []*Node
	for i, n := range nodes {
		if i != lead {
			rest = append(rest, n)
		}
	}
	start = time.Now()
	for i, n := range rest {
		for k := range 3 {
			if err := commit(n, fmt.Sprintf("b-%d-%d", i, k)); err != nil {
				t.Fatalf("commit after the leader left, through %s: %v", n.ID(), err)
			}
		}
	}
	t.Logf("writes resumed %v after the leader's shutdown", time.Since(start))

	// Removing: not the last voter; an unknown id is named.
	if err := rest[0].Remove(ctx, "nobody"); !errors.Is(err, ErrMembership) || !strings.Contains(err.Error(), "n0") {
		t.Fatalf("removing an unknown node: %v", err)
	}
	if err := rest[0].Remove(ctx, nodes[lead].ID()); err != nil {
		t.Fatalf("removing the stopped node: %v", err)
	}
	if err := rest[1].Remove(ctx, rest[0].ID()); err != nil {
		t.Fatalf("removing a second node: %v", err)
	}
	// The one left elects itself (the removed node may have led).
	for !rest[1].IsLeader() && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if err := rest[1].Remove(ctx, rest[1].ID()); !errors.Is(err, ErrMembership) || !strings.Contains(err.Error(), "last voter") {
		t.Fatalf("removing the last voter: %v", err)
	}

	snap, err := txlog.NewLog(shared).Snapshot(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range snap.Files {
		seen[f.Path] = true
	}
	acked.Range(func(k, _ any) bool {
		if !seen[k.(string)] {
			t.Errorf("acknowledged %s is not in the table", k)
		}
		return true
	})
	if len(snap.Files) != 21 || snap.Version != 21 {
		t.Fatalf("version %d with %d files; 21 commits expected", snap.Version, len(snap.Files))
	}
}
