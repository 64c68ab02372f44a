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

// ErrConflict is a commit whose version another commit already took.
var ErrConflict = errors.New("cluster: version already ratified")

// Config configures a Node. Zero values take the defaults noted.
type Config struct {
	// ID names the node in the cluster; it must stay the same across restarts.
	ID string
	// Dir holds the Raft log, stable store and snapshots.
	Dir string
	// Transport carries Raft traffic; nil opens a TCP transport on Addr.
	Transport raft.Transport
	// Addr is the Raft bind and advertise address (host:port) for the TCP transport.
	Addr string
	// Bootstrap makes a node without Raft state start a cluster of its own (of one voter).
	Bootstrap bool
	// Publish writes a ratified commit where readers find it (_delta_log/<v>.json of the
	// table), if absent; an existing file with the same bytes is success.
	Publish func(ctx context.Context, c Commit) error
	// Forward sends a command to the leader when this node is not it, where it is given to
	// the leader's Node.Apply; nil means commands made on a follower fail with
	// ErrNotLeader.
	Forward func(ctx context.Context, leaderID, leaderAddr string, cmd []byte) error
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

	publishMu sync.Mutex // publishing runs one commit at a time, in version order
	// unrecorded are versions this leader published that the state still holds as
	// pending; the next ratify command carries them, which saves a log entry per commit.
	unrecorded map[Version]bool
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
	trans := cfg.Transport
	if trans == nil {
		trans, err = raft.NewTCPTransportWithLogger(cfg.Addr, nil, 3, 10*time.Second, rc.Logger)
		if err != nil {
			bolt.Close()
			return nil, fmt.Errorf("cluster: listening for Raft on %s: %w", cfg.Addr, err)
		}
	}
	f := newFSM()
	r, err := raft.NewRaft(rc, f, bolt, bolt, snaps, trans)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("cluster: starting Raft: %w", err)
	}
	n := &Node{cfg: cfg, raft: r, fsm: f, trans: trans, bolt: bolt, log: log, stop: make(chan struct{}), unrecorded: map[Version]bool{}}
	if cfg.Bootstrap {
		has, err := raft.HasExistingState(bolt, bolt, snaps)
		if err != nil {
			n.Shutdown()
			return nil, fmt.Errorf("cluster: %w", err)
		}
		if !has {
			err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}).Error()
			if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
				n.Shutdown()
				return nil, fmt.Errorf("cluster: bootstrapping: %w", err)
			}
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
	_ = n.raft.Shutdown().Error()
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
		errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, ErrNotLeader)
}

// Apply runs a command on the leader (this node's own, or one a follower forwarded) and,
// for commits, publishes them before returning.
func (n *Node) Apply(ctx context.Context, cmd []byte) error {
	var c command
	if err := json.Unmarshal(cmd, &c); err != nil {
		return fmt.Errorf("cluster: undecodable command: %w", err)
	}
	// One at a time: ratification and publication stay in version order per table, and a
	// table's next version is ratified only once the previous one is published.
	n.publishMu.Lock()
	defer n.publishMu.Unlock()
	if !n.IsLeader() {
		return raft.ErrNotLeader
	}
	if err := n.publishPending(ctx); err != nil {
		return err
	}
	var carried []Version
	if c.Op == "ratify" && len(n.unrecorded) > 0 {
		for v := range n.unrecorded {
			carried = append(carried, v)
		}
		c.Versions = carried
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		cmd = b
	}
	fut := n.raft.Apply(cmd, 10*time.Second)
	if err := fut.Error(); err != nil {
		return err
	}
	for _, v := range carried {
		delete(n.unrecorded, v)
	}
	if res, ok := fut.Response().(*ratifyResult); ok && res != nil {
		if res.Conflict != nil {
			return fmt.Errorf("%w: %s version %d", ErrConflict, res.Conflict.Table, res.Conflict.Version)
		}
		if res.Err != nil {
			return res.Err
		}
	}
	if c.Op != "ratify" {
		return nil
	}
	if err := n.publishPending(ctx); err != nil {
		// This command's commits that did not reach storage are undone, so the statement
		// fails without a trace (commits of other tables it published stay).
		var undo []Commit
		for _, cm := range c.Commits {
			if n.fsm.isPending(cm) {
				undo = append(undo, cm)
			}
		}
		if len(undo) > 0 {
			b, merr := json.Marshal(command{Op: "unratify", Commits: undo})
			if merr == nil {
				merr = n.raft.Apply(b, 10*time.Second).Error()
			}
			if merr != nil {
				n.log.Error("cluster: undoing commits that could not be published; they will be published later", "err", merr)
			}
		}
		return err
	}
	// A commit whose version a writer outside the cluster took was voided while
	// publishing: for its proposer that is a lost race, as with put-if-absent.
	for _, cm := range c.Commits {
		if latest, _ := n.fsm.known(cm.Table); latest < cm.Version || n.fsm.hash(cm.Table, cm.Version) != cm.Hash {
			return fmt.Errorf("%w: %s version %d was taken outside the cluster", ErrConflict, cm.Table, cm.Version)
		}
	}
	return nil
}

// publishPending writes every ratified, unpublished commit (after a leader change there
// may be some from the old leader) and records that they are published; versions writers
// outside the cluster took meanwhile are voided. n.publishMu is held.
func (n *Node) publishPending(ctx context.Context) error {
	pend := n.fsm.pending()
	if len(pend) == 0 {
		return nil
	}
	var done, void []Version
	skip := map[string]bool{}
	for _, c := range pend {
		if skip[c.Table] || n.unrecorded[Version{c.Table, c.Version}] {
			continue
		}
		err := n.cfg.Publish(ctx, c)
		switch {
		case err == nil:
			done = append(done, Version{c.Table, c.Version})
		case errors.Is(err, ErrTakenOutside):
			void = append(void, Version{c.Table, c.Version})
			skip[c.Table] = true // later versions of the table go with it
		default:
			return fmt.Errorf("cluster: publishing %s version %d: %w", c.Table, c.Version, err)
		}
	}
	for _, v := range done {
		n.unrecorded[v] = true
	}
	if len(n.unrecorded) < 256 {
		done = nil // carried by the next ratify command instead
	} else {
		done = done[:0]
		for v := range n.unrecorded {
			done = append(done, v)
		}
		clear(n.unrecorded)
	}
	for _, cmd := range []command{{Op: "published", Versions: done}, {Op: "void", Versions: void}} {
		if len(cmd.Versions) == 0 {
			continue
		}
		b, err := json.Marshal(cmd)
		if err != nil {
			return err
		}
		err = n.raft.Apply(b, 10*time.Second).Error()
		if err != nil && cmd.Op == "void" {
			return fmt.Errorf("cluster: voiding versions taken outside the cluster: %w", err)
		}
		if err != nil {
			// The marker only lets the state drop the bytes; publishing again is
			// harmless, so failing to record it fails nothing.
			n.log.Warn("cluster: recording published commits", "err", err)
		}
	}
	return nil
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
			if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
				n.log.Warn("cluster: new leader could not catch up", "err", err)
				continue
			}
			n.publishMu.Lock()
			clear(n.unrecorded) // from an earlier term: publishing again finds them written
			err := n.publishPending(context.Background())
			n.publishMu.Unlock()
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
