// Package cluster is the Raft coordinator: it ratifies table commits (and, later, catalog
// changes) in a replicated log so that several nodes sharing one warehouse commit to the
// same tables without stepping on each other. Data files never pass through it: a commit
// is proposed only after its files are durable on the shared storage, and the log carries
// the commit file's bytes, a few KB. The leader then publishes _delta_log/<v>.json, so the
// tables stay plain Delta tables for every other reader.
package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// ErrNotLeader is returned by operations only the leader can do when there is no leader to
// forward them to.
var ErrNotLeader = errors.New("cluster: no leader")

// ErrShutdown is returned by a node that was shut down.
var ErrShutdown = errors.New("cluster: the node is shutting down")

// ErrGap is a commit whose version is past the one after the table's latest: its proposer
// has seen versions the cluster did not ratify (written by others) and must say so in Base.
var ErrGap = errors.New("cluster: version out of order")

// ErrTakenOutside is a ratified commit whose version a writer outside the cluster took in
// storage before it could be published.
var ErrTakenOutside = errors.New("cluster: version taken outside the cluster")

// ErrConflict is a commit whose version another commit already took. The error is a
// *VersionTaken, which names the version.
var ErrConflict = errors.New("cluster: version already ratified")

// VersionTaken is a version another commit took: in the cluster, or (Outside) a writer
// outside it, in storage.
type VersionTaken struct {
	Table   string `json:"table"`
	Version int64  `json:"version"`
	Outside bool   `json:"outside,omitempty"`
}

func (e *VersionTaken) Error() string {
	if e.Outside {
		return fmt.Sprintf("%v: %s version %d was taken outside the cluster", ErrConflict, e.Table, e.Version)
	}
	return fmt.Sprintf("%v: %s version %d", ErrConflict, e.Table, e.Version)
}

func (e *VersionTaken) Is(target error) bool { return target == ErrConflict }

// Config configures a Node. Zero values take the defaults noted.
type Config struct {
	// ID names the node in the cluster; it must stay the same across restarts.
	ID string
	// Dir holds the Raft log, stable store and snapshots.
	Dir string
	// Transport carries Raft traffic; nil listens on Addr, where the port also serves the
	// requests nodes make of each other (forwarded commands, joins, status).
	Transport raft.Transport
	// Addr is the Raft bind address (host:port); port 0 picks a free one.
	Addr string
	// Advertise is where other nodes reach this one; default Addr (as bound).
	Advertise string
	// Bootstrap makes a node without Raft state and without Join start a cluster of its
	// own (of one voter).
	Bootstrap bool
	// Join lists members (Raft addresses) a node without Raft state asks to let it in.
	// With BootstrapExpect > 1, nodes that find no cluster there announce themselves to
	// each other and bootstrap together once that many have met.
	Join            []string
	BootstrapExpect int
	// JoinTimeout bounds the joining; default 60 s.
	JoinTimeout time.Duration
	// Identity is the marker of the warehouse this node sees; a node whose marker differs
	// from the cluster's is refused. "" skips the check (tests).
	Identity string
	// Publish writes a ratified commit where readers find it (_delta_log/<v>.json of the
	// table), if absent; an existing file with the same bytes is success.
	Publish func(ctx context.Context, c Commit) error
	// Forward sends a command to the leader when this node is not it, where it is given to
	// the leader's Node.Apply; nil sends it over the network (with the node's own
	// listener) or, with a Transport given, fails with ErrNotLeader.
	Forward func(ctx context.Context, leaderID, leaderAddr string, cmd []byte) error
	// OnPublished is called on the leader after it published versions of table (up to
	// version), whichever node proposed them; it must not block.
	OnPublished func(table string, version int64)
	// OnCatalogChange is called (on every node, in log order) when a node says it changed
	// the catalog; it must not block.
	OnCatalogChange func()
	// Timeouts for tests; zero values take Raft's defaults (1 s heartbeat and election).
	HeartbeatTimeout, ElectionTimeout time.Duration
	// SnapshotThreshold is the number of log entries between snapshots. Default 8192.
	SnapshotThreshold uint64
	Logger            *slog.Logger
}

// Node is one member of the cluster.
type Node struct {
	cfg   Config
	raft  *raft.Raft
	fsm   *fsm
	trans raft.Transport
	bolt  *raftboltdb.BoltStore
	log   *slog.Logger

	// Publication runs one table at a time, in version order, under the table's lock;
	// commands to different tables go through Raft concurrently and share log writes.
	locksMu sync.Mutex
	locks   map[string]*sync.Mutex
	// What this leader published, per table: published is the highest version written,
	// unrecorded the highest one the replicated state still holds as pending. The next
	// ratify command carries unrecorded, which saves a log entry per commit. Both are
	// reset when leadership is gained.
	pubMu      sync.Mutex
	published  map[string]int64
	unrecorded map[string]int64
	staged     sync.Map // stagedID → storage.Staged: commits staged on this node
	peers      peers    // connections to other nodes
	notifyMu   sync.Mutex
	notified   map[string]string // id → address of nodes waiting to bootstrap together
	ready      chan struct{}     // closed once raft is set: requests wait for it
	stop       chan struct{}
	done       sync.WaitGroup
}

// Open starts the node: it recovers its state from Dir and, with Bootstrap and no state,
// starts a cluster of one.
func Open(cfg Config) (*Node, error) {
	if cfg.ID == "" {
		return nil, errors.New("cluster: a node needs an id")
	}
	if cfg.Publish == nil {
		return nil, errors.New("cluster: a node needs a Publish function")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.BatchApplyCh = true // concurrent commits share one log write (one fsync)
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{log}})
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout, rc.LeaderLeaseTimeout = cfg.HeartbeatTimeout, cfg.HeartbeatTimeout/2
	}
	if cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = cfg.ElectionTimeout
	}
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
		rc.TrailingLogs = cfg.SnapshotThreshold
	}
	bolt, err := raftboltdb.NewBoltStore(filepath.Join(cfg.Dir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("cluster: opening the Raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, rc.Logger)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("cluster: opening the snapshot store: %w", err)
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = time.Minute
	}
	n := &Node{cfg: cfg, fsm: newFSM(cfg.OnCatalogChange), bolt: bolt, log: log, stop: make(chan struct{}), ready: make(chan struct{}),
		locks: map[string]*sync.Mutex{}, published: map[string]int64{}, unrecorded: map[string]int64{}}
	n.trans = cfg.Transport
	if n.trans == nil {
		mux, err := listenMux(cfg.Addr, cfg.Advertise, n.serveConn)
		if err != nil {
			bolt.Close()
			return nil, fmt.Errorf("cluster: listening for Raft on %s: %w", cfg.Addr, err)
		}
		n.peers.mux = mux
		n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: mux, MaxPool: 3, Timeout: 10 * time.Second, Logger: rc.Logger})
		if cfg.Forward == nil {
			n.cfg.Forward = n.forward
		}
	}
	r, err := raft.NewRaft(rc, n.fsm, bolt, bolt, snaps, n.trans)
	if err != nil {
		if c, ok := n.trans.(io.Closer); ok {
			c.Close()
		}
		bolt.Close()
		return nil, fmt.Errorf("cluster: starting Raft: %w", err)
	}
	n.raft = r
	close(n.ready)
	has, err := raft.HasExistingState(bolt, bolt, snaps)
	if err != nil {
		n.Shutdown()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	switch {
	case has: // a restart: the log knows the cluster
	case len(cfg.Join) > 0:
		if err := n.joinCluster(context.Background()); err != nil {
			n.Shutdown()
			return nil, err
		}
	case cfg.Bootstrap:
		err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: n.trans.LocalAddr()}}}).Error()
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.Shutdown()
			return nil, fmt.Errorf("cluster: bootstrapping: %w", err)
		}
	}
	n.done.Add(1)
	go n.watchLeadership()
	return n, nil
}

// Shutdown leaves the cluster running without this node (it is not removed).
func (n *Node) Shutdown() {
	select {
	case <-n.stop:
		return
	default:
		close(n.stop)
	}
	n.peers.close()
	if n.raft != nil {
		_ = n.raft.Shutdown().Error()
	}
	n.done.Wait()
	if c, ok := n.trans.(io.Closer); ok {
		c.Close()
	}
	n.bolt.Close()
}

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.ID }

// Addr is the node's Raft address.
func (n *Node) Addr() string { return string(n.trans.LocalAddr()) }

// IsLeader reports whether this node leads now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the current leader's id and address ("" when unknown).
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// WaitLeader waits until the cluster has a leader.
func (n *Node) WaitLeader(ctx context.Context) error {
	for {
		if id, _ := n.Leader(); id != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: no leader elected: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// AddVoter adds a node (on the leader).
func (n *Node) AddVoter(id, addr string) error {
	return n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second).Error()
}

// Known returns the latest version the cluster ratified for table, or false when it has
// not seen the table.
func (n *Node) Known(table string) (int64, bool) { return n.fsm.known(table) }

// Digest renders the replicated state, for checking that nodes agree.
func (n *Node) Digest() string { return n.fsm.digest() }

// hashOf is the content hash a Commit carries.
func hashOf(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Ratify ratifies the commits, all or none, and publishes them; it returns once they are
// published. A version another commit took fails with an error wrapping ErrConflict. On a
// follower the commits go to the leader. A retry of the same commits after an ambiguous
// failure (leadership lost mid-way) succeeds: the same bytes at the same version are the
// same commit.
func (n *Node) Ratify(ctx context.Context, commits []Commit) error {
	for i := range commits {
		if commits[i].Hash == "" {
			commits[i].Hash = hashOf(commits[i].Data)
		}
	}
	b, err := json.Marshal(command{Op: "ratify", Commits: commits})
	if err != nil {
		return err
	}
	return n.submit(ctx, b)
}

// Forget drops what the cluster knows of tables (when they are dropped, so a new table in
// the same folder starts from version 0).
func (n *Node) Forget(ctx context.Context, tables ...string) error {
	b, err := json.Marshal(command{Op: "forget", Tables: tables})
	if err != nil {
		return err
	}
	return n.submit(ctx, b)
}

// CatalogChanged tells every node that this one changed the catalog in the warehouse.
func (n *Node) CatalogChanged(ctx context.Context) error {
	b, err := json.Marshal(command{Op: "catalog"})
	if err != nil {
		return err
	}
	return n.submit(ctx, b)
}

// submit applies a command on the leader, from wherever this node is, retrying while
// leadership moves.
func (n *Node) submit(ctx context.Context, cmd []byte) error {
	var last error
	for attempt := 0; attempt < 50; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("cluster: %w (last error: %v)", ctx.Err(), last)
			case <-n.stop:
				return ErrShutdown
			case <-time.After(time.Duration(min(attempt, 10)) * 50 * time.Millisecond):
			}
		}
		var err error
		if n.IsLeader() {
			err = n.Apply(ctx, cmd)
		} else if id, addr := n.Leader(); id == "" || id == n.cfg.ID || n.cfg.Forward == nil {
			err = ErrNotLeader
		} else {
			err = n.cfg.Forward(ctx, id, addr, cmd)
		}
		if err == nil || !retryable(err) {
			return err
		}
		last = err
	}
	return fmt.Errorf("cluster: gave up after retries: %w", last)
}

// retryable errors leave the outcome to a retry: nothing entered the log, or the leader
// changed before the outcome was known (the retry then finds its own commit ratified).
func retryable(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrEnqueueTimeout) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, ErrNotLeader) ||
		errors.Is(err, raft.ErrRaftShutdown) || errors.Is(err, ErrShutdown) || errors.Is(err, ErrUnreachable)
}

// Apply runs a command on the leader (this node's own, or one a follower forwarded) and,
// for commits, publishes them before returning.
func (n *Node) Apply(ctx context.Context, cmd []byte) error {
	var c command
	if err := json.Unmarshal(cmd, &c); err != nil {
		return fmt.Errorf("cluster: undecodable command: %w", err)
	}
	if !n.IsLeader() {
		return raft.ErrNotLeader
	}
	var carried []Version
	if c.Op == "ratify" {
		if carried = n.takeUnrecorded(); len(carried) > 0 {
			c.Versions = carried
			b, err := json.Marshal(c)
			if err != nil {
				return err
			}
			cmd = b
		}
	}
	fut := n.raft.Apply(cmd, 10*time.Second)
	if err := n.await(fut); err != nil {
		n.putBackUnrecorded(carried)
		return err
	}
	if res, ok := fut.Response().(*ratifyResult); ok && res != nil {
		if res.Conflict != nil {
			return &VersionTaken{Table: res.Conflict.Table, Version: res.Conflict.Version}
		}
		if res.Err != nil {
			return res.Err
		}
	}
	switch c.Op {
	case "forget":
		n.pubMu.Lock()
		for _, t := range c.Tables {
			delete(n.published, t)
			delete(n.unrecorded, t)
		}
		n.pubMu.Unlock()
	case "ratify":
		return n.publishCommits(ctx, c.Commits)
	}
	return nil
}

// publishCommits publishes the tables of ratified commits, each up to and including its
// commit, and reports whether the commits made it: a commit whose version a writer outside
// the cluster took is a lost race (ErrConflict), as with put-if-absent; one that could not
// be published (or was undone because an earlier version could not be) fails. Tables
// published before a failure stay published.
func (n *Node) publishCommits(ctx context.Context, commits []Commit) error {
	var tables []string
	for _, cm := range commits {
		if !slices.Contains(tables, cm.Table) {
			tables = append(tables, cm.Table)
		}
	}
	slices.Sort(tables)
	for _, t := range tables {
		if err := n.publishTable(ctx, t); err != nil {
			return err
		}
	}
	for _, cm := range commits {
		state, latest := n.fsm.state(cm)
		switch {
		case state == statePublished:
		case state == statePending && n.publishedUpTo(cm.Table) >= cm.Version:
		case state == stateGone && latest >= cm.Version:
			return &VersionTaken{Table: cm.Table, Version: cm.Version, Outside: true}
		case state == stateGone:
			return fmt.Errorf("cluster: %s version %d was undone: an earlier version could not be published", cm.Table, cm.Version)
		default:
			return fmt.Errorf("cluster: %s version %d is ratified but not published", cm.Table, cm.Version)
		}
	}
	return nil
}

// publishTable writes the table's ratified, unpublished commits in version order (after a
// leader change some may be an old leader's). A version a writer outside the cluster took
// meanwhile is voided with the versions after it; a version that cannot be written is
// undone with the versions after it (none of them was acknowledged: a commit is answered
// only once published).
func (n *Node) publishTable(ctx context.Context, table string) error {
	mu := n.tableLock(table)
	mu.Lock()
	defer mu.Unlock()
	done := n.publishedUpTo(table)
	if n.cfg.OnPublished != nil {
		defer func() {
			if v := n.publishedUpTo(table); v > done {
				n.cfg.OnPublished(table, v)
			}
		}()
	}
	for _, c := range n.fsm.pending(table) {
		if c.Version <= done {
			continue
		}
		err := n.publish(ctx, c)
		switch {
		case err == nil:
			n.markPublished(table, c.Version)
			continue
		case errors.Is(err, ErrTakenOutside):
			if verr := n.applyCommand(command{Op: "void", Versions: []Version{{table, c.Version}}}); verr != nil {
				return fmt.Errorf("cluster: voiding %s version %d, taken outside the cluster: %w", table, c.Version, verr)
			}
			return nil
		}
		if uerr := n.applyCommand(command{Op: "unratify", Commits: []Commit{c}}); uerr != nil {
			n.log.Error("cluster: undoing commits that could not be published; they will be published later", "table", table, "version", c.Version, "err", uerr)
		}
		return fmt.Errorf("cluster: publishing %s version %d: %w", table, c.Version, err)
	}
	n.recordIfMany()
	return nil
}

// await waits for a future of the log. With BatchApplyCh, Raft buffers entries; one
// still in the buffer when Raft shuts down is never answered, so shutting down answers
// for it.
func (n *Node) await(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-n.stop:
		return ErrShutdown
	}
}

// applyCommand runs a command of the leader's own through Raft.
func (n *Node) applyCommand(c command) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return n.await(n.raft.Apply(b, 10*time.Second))
}

func (n *Node) tableLock(table string) *sync.Mutex {
	n.locksMu.Lock()
	defer n.locksMu.Unlock()
	mu := n.locks[table]
	if mu == nil {
		mu = &sync.Mutex{}
		n.locks[table] = mu
	}
	return mu
}

// publishedUpTo is the highest version of table this leader published, or -1.
func (n *Node) publishedUpTo(table string) int64 {
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	if v, ok := n.published[table]; ok {
		return v
	}
	return -1
}

func (n *Node) markPublished(table string, v int64) {
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	n.published[table] = max(n.published[table], v)
	if u, ok := n.unrecorded[table]; !ok || u < v {
		n.unrecorded[table] = v
	}
}

// takeUnrecorded hands the published versions the state does not know of yet to a command
// that records them.
func (n *Node) takeUnrecorded() []Version {
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	var out []Version
	for t, v := range n.unrecorded {
		out = append(out, Version{t, v})
	}
	clear(n.unrecorded)
	return out
}

// putBackUnrecorded returns versions whose recording command failed.
func (n *Node) putBackUnrecorded(vs []Version) {
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	for _, v := range vs {
		if u, ok := n.unrecorded[v.Table]; !ok || u < v.Version {
			n.unrecorded[v.Table] = v.Version
		}
	}
}

// recordIfMany records published versions in a command of their own when ratify commands
// have not carried them for a while (many tables written once each), so the state does not
// keep their bytes.
func (n *Node) recordIfMany() {
	n.pubMu.Lock()
	many := len(n.unrecorded) >= 256
	n.pubMu.Unlock()
	if !many {
		return
	}
	vs := n.takeUnrecorded()
	if err := n.applyCommand(command{Op: "published", Versions: vs}); err != nil {
		// The marker only lets the state drop the bytes; publishing again is harmless.
		n.putBackUnrecorded(vs)
		n.log.Warn("cluster: recording published commits", "err", err)
	}
}

// publishAll publishes every table with ratified, unpublished commits.
func (n *Node) publishAll(ctx context.Context) error {
	var errs []error
	seen := map[string]bool{}
	for _, c := range n.fsm.pending("") {
		if seen[c.Table] {
			continue
		}
		seen[c.Table] = true
		if err := n.publishTable(ctx, c.Table); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// watchLeadership publishes what an old leader ratified but did not publish, as soon as
// this node leads.
func (n *Node) watchLeadership() {
	defer n.done.Done()
	for {
		select {
		case <-n.stop:
			return
		case lead := <-n.raft.LeaderCh():
			if !lead {
				continue
			}
			// Wait for the entries of earlier terms to be applied first.
			if err := n.await(n.raft.Barrier(10 * time.Second)); err != nil {
				n.log.Warn("cluster: new leader could not catch up", "err", err)
				continue
			}
			n.pubMu.Lock()
			// From an earlier term: what the state holds as pending is published again
			// (an existing file with the same bytes is success).
			clear(n.published)
			clear(n.unrecorded)
			n.pubMu.Unlock()
			err := n.publishAll(context.Background())
			if err != nil {
				n.log.Error("cluster: new leader could not publish ratified commits", "err", err)
			}
		}
	}
}

// slogWriter sends Raft's log lines to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn(string(p))
	return len(p), nil
}
