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
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/lakehoused/lakehoused/storage"
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
	forgetGen  uint64 // bumped by every forget: markers taken before it are stale
	// leaderReady: this node leads and has applied every entry of earlier terms (its
	// commit index is then the cluster's, which ReadIndex hands out).
	leaderReady atomic.Bool
	staged      sync.Map // stagedID → storage.Staged: commits staged on this node
	peers       peers    // connections to other nodes
	notifyMu    sync.Mutex
	notified    map[string]string // id → address of nodes waiting to bootstrap together
	ready       chan struct{}     // closed once raft is set: requests wait for it
	stop        chan struct{}
	done        sync.WaitGroup
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
	n := &Node{cfg: cfg, bolt: bolt, log: log, stop: make(chan struct{}), ready: make(chan struct{}),
		locks: map[string]*sync.Mutex{}, published: map[string]int64{}, unrecorded: map[string]int64{}}
	n.fsm = newFSM(cfg.OnCatalogChange, n.forgetPublished)
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
	// ambiguous: an attempt may have entered the log (leadership lost, a peer that went
	// away mid-call); if no later attempt settles it, the outcome is unknown, and the
	// caller must not act as if nothing happened (by deleting the data files).
	ambiguous := false
	unknown := func(err error) error {
		if ambiguous && !errors.Is(err, storage.ErrOutcomeUnknown) {
			return fmt.Errorf("%w: %w", storage.ErrOutcomeUnknown, err)
		}
		return err
	}
	for attempt := 0; attempt < 50; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return unknown(fmt.Errorf("cluster: %w (last error: %v)", ctx.Err(), last))
			case <-n.stop:
				return unknown(ErrShutdown)
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
		ambiguous = ambiguous || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, ErrUnreachable) ||
			errors.Is(err, ErrShutdown) || errors.Is(err, raft.ErrRaftShutdown)
		last = err
	}
	return unknown(fmt.Errorf("cluster: gave up after retries: %w", last))
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
	var gen uint64
	if c.Op == "ratify" {
		if carried, gen = n.takeUnrecorded(); len(carried) > 0 {
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
		n.putBackUnrecorded(carried, gen)
		return err
	}
	if res, ok := fut.Response().(*ratifyResult); ok && res != nil {
		if res.Conflict != nil {
			// The version is ratified for another commit: make sure it gets published (its
			// proposer may be gone), or the loser would wait for a file that never comes.
			_, _ = n.publishTable(ctx, res.Conflict.Table)
			return &VersionTaken{Table: res.Conflict.Table, Version: res.Conflict.Version}
		}
		if res.Err != nil {
			return res.Err
		}
	}
	switch c.Op {
	case "ratify":
		return n.publishCommits(ctx, c.Commits)
	}
	return nil
}

// publishCommits publishes the tables of ratified commits, each up to and including its
// commit, and reports how the commits fared: nil when all are published; a definite
// failure when none is (a version a writer outside the cluster took is a lost race,
// *VersionTaken, as with put-if-absent; a version undone because it could not be
// written); and an error wrapping storage.ErrOutcomeUnknown otherwise (some tables
// published and not others, or a write whose outcome is unknown), so the caller keeps its
// data files: what is ratified is published once storage allows.
func (n *Node) publishCommits(ctx context.Context, commits []Commit) error {
	var tables []string
	for _, cm := range commits {
		if !slices.Contains(tables, cm.Table) {
			tables = append(tables, cm.Table)
		}
	}
	slices.Sort(tables)
	upTo := map[string]int64{}
	var publishErr error
	for _, t := range tables {
		v, err := n.publishTable(ctx, t)
		upTo[t] = v
		if err != nil && publishErr == nil {
			publishErr = err
		}
	}
	var published int
	var definite error
	for _, cm := range commits {
		state, latest := n.fsm.state(cm)
		switch {
		case state == statePublished, state == statePending && upTo[cm.Table] >= cm.Version:
			published++
		case state == stateGone && latest >= cm.Version:
			if definite == nil {
				definite = &VersionTaken{Table: cm.Table, Version: cm.Version, Outside: true}
			}
		case state == stateGone:
			if definite == nil {
				definite = fmt.Errorf("cluster: %s version %d was undone: it, or an earlier version, could not be written (%v)", cm.Table, cm.Version, publishErr)
			}
		default: // still pending: kept to be published later
			return fmt.Errorf("%w: %s version %d is ratified, not yet written: %v", storage.ErrOutcomeUnknown, cm.Table, cm.Version, publishErr)
		}
	}
	switch {
	case published == len(commits):
		return nil
	case published == 0:
		return definite
	}
	return fmt.Errorf("%w: the transaction is partly written (%d of %d tables): %v", storage.ErrOutcomeUnknown, published, len(commits), definite)
}

// publishTable writes the table's ratified, unpublished commits in version order (after a
// leader change some may be an old leader's), and returns the highest version it knows
// written. A version a writer outside the cluster took meanwhile is voided with the
// versions after it. A version that certainly was not written is undone with the versions
// after it (none was acknowledged: a commit is answered only once published), unless it
// belongs to a multi-table transaction, which is kept to be written later rather than
// split; a write whose outcome is unknown is kept too.
func (n *Node) publishTable(ctx context.Context, table string) (int64, error) {
	mu := n.tableLock(table)
	mu.Lock()
	defer mu.Unlock()
	done := n.publishedUpTo(table)
	start := done
	if n.cfg.OnPublished != nil {
		defer func() {
			if done > start {
				n.cfg.OnPublished(table, done)
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
			done = c.Version
			continue
		case errors.Is(err, ErrTakenOutside):
			if verr := n.applyCommand(command{Op: "void", Versions: []Version{{table, c.Version}}}); verr != nil {
				return done, fmt.Errorf("cluster: voiding %s version %d, taken outside the cluster: %w", table, c.Version, verr)
			}
			return done, nil
		case errors.Is(err, storage.ErrOutcomeUnknown):
			return done, fmt.Errorf("cluster: publishing %s version %d: %w", table, c.Version, err)
		case c.atomic:
			return done, fmt.Errorf("cluster: publishing %s version %d of a multi-table transaction (kept, to be written when storage allows): %w", table, c.Version, err)
		}
		if uerr := n.applyCommand(command{Op: "unratify", Commits: []Commit{c}}); uerr != nil {
			n.log.Error("cluster: undoing commits that could not be published; they will be published later", "table", table, "version", c.Version, "err", uerr)
			return done, fmt.Errorf("%w: publishing %s version %d: %v (and undoing it: %v)", storage.ErrOutcomeUnknown, table, c.Version, err, uerr)
		}
		return done, fmt.Errorf("cluster: publishing %s version %d: %w", table, c.Version, err)
	}
	n.recordIfMany()
	return done, nil
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
func (n *Node) takeUnrecorded() ([]Version, uint64) {
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	var out []Version
	for t, v := range n.unrecorded {
		out = append(out, Version{t, v})
	}
	clear(n.unrecorded)
	return out, n.forgetGen
}

// putBackUnrecorded returns versions whose recording command failed, unless a table was
// forgotten since they were taken (they would describe the old table).
func (n *Node) putBackUnrecorded(vs []Version, gen uint64) {
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	if gen != n.forgetGen {
		return
	}
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
	vs, gen := n.takeUnrecorded()
	if err := n.applyCommand(command{Op: "published", Versions: vs}); err != nil {
		// The marker only lets the state drop the bytes; publishing again is harmless.
		n.putBackUnrecorded(vs, gen)
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
		if _, err := n.publishTable(ctx, c.Table); err != nil {
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
			n.leaderReady.Store(false)
			if !lead {
				continue
			}
			// Wait for the entries of earlier terms to be applied, then publish what an
			// earlier leader ratified and did not publish (an existing file with the same
			// bytes is success). What this node published itself in an earlier term stays
			// known: a published version never changes (a forget clears it). Retried
			// while this node leads: an unpublished version would stall its table.
			for wait := 50 * time.Millisecond; n.IsLeader(); wait = min(2*wait, 5*time.Second) {
				err := n.await(n.raft.Barrier(10 * time.Second))
				if err == nil {
					n.leaderReady.Store(true)
					if err = n.publishAll(context.Background()); err == nil {
						break
					}
				}
				n.log.Warn("cluster: new leader could not catch up or publish ratified commits; retrying", "err", err, "in", wait)
				select {
				case <-n.stop:
					return
				case <-time.After(wait):
				}
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

// forgetPublished drops what this node published of tables the cluster forgot (dropped):
// a new table in the same folder starts again from version 0.
func (n *Node) forgetPublished(tables []string) {
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	for _, t := range tables {
		delete(n.published, t)
		delete(n.unrecorded, t)
	}
	n.forgetGen++
}
