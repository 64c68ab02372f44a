package txlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lakehoused/lakehoused/storage"
)

// Committer writes a new version of a table's log. It is the seam the cluster replaces
// with a Raft-backed committer that ratifies versions before publishing them.
type Committer interface {
	// Commit writes actions as the version after readVersion (readVersion -1 creates the
	// table as version 0) and returns the version written. When other commits got there
	// first it retries after them if they do not conflict; otherwise it returns an error
	// wrapping ErrConflict.
	// The table is identified by its Log, which the committer moves forward in memory after
	// a successful commit, so whoever reads through the same Log sees the new version
	// without reading the commit file back.
	Commit(ctx context.Context, log *Log, readVersion int64, actions []Action, opts ...CommitOption) (int64, error)
}

// CommitOption adjusts one commit.
type CommitOption func(*commitOptions)

type commitOptions struct {
	dataDurable func() error
	// writeSerializable: commit over concurrent append-only commits (see WriteSerializable).
	writeSerializable bool
	checkAppends      func([]Commit) error
}

// WriteSerializable commits a transaction that rewrote files (UPDATE, DELETE) over
// concurrent commits that only appended files, as Delta's default isolation level of that
// name does: the appended rows are ordered after this transaction, so it need not have read
// them. Concurrent removes and metadata changes still conflict, and so do appends that say
// they read the table (isBlindAppend=false), unless lakehoused wrote them as inserts that
// only checked their own keys. check, if not nil, is shown the appending commits before this
// one is committed after them, and refuses with an error wrapping ErrConflict (a key this
// transaction writes that one of them also added) or fails with any other error. The
// commit records isolationLevel WriteSerializable.
func WriteSerializable(check func(appends []Commit) error) CommitOption {
	return func(o *commitOptions) { o.writeSerializable, o.checkAppends = true, check }
}

// AfterDataDurable lets a commit be prepared while the data files it references are still
// being written: the committer runs wait at the same time as it makes the commit file's
// bytes durable (staged, not yet visible), and publishes the commit only once wait has
// succeeded. If wait fails, nothing is published and Commit returns its error. The
// overlap saves one file write and fsync from the latency of every commit.
func AfterDataDurable(wait func() error) CommitOption {
	return func(o *commitOptions) { o.dataDurable = wait }
}

// StorageCommitter commits by put-if-absent of _delta_log/<v>.json, the Delta protocol's
// own mutual exclusion. It is what a single node, the tools and the tests use.
type StorageCommitter struct {
	// MaxRetries is how many times a commit that lost the race to non-conflicting commits
	// is retried at a newer version. Default 15 (as delta-rs).
	MaxRetries int
	// CheckpointInterval writes a checkpoint after every version divisible by it. The table
	// property delta.checkpointInterval overrides it. Default 10 (as Delta-Spark).
	CheckpointInterval int64
	// Logger receives checkpoint and log cleanup failures (which never fail a commit).
	// Default slog.Default().
	Logger *slog.Logger
	// Now is the clock, for tests: commit timestamps, and the "now" of checkpoints (expired
	// tombstones) and of log cleanup (delta.logRetentionDuration). Default time.Now.
	Now func() time.Time
	// SyncCheckpoints writes checkpoints, and runs the log cleanup that follows each one,
	// inside Commit, at every multiple of the interval, for tests that look for the files
	// right after. By default a checkpoint is written in the background once the commit
	// has returned: it costs O(live files), and the statement that happens to land on the
	// interval must not pay for it (it was 39% of CPU under autocommit inserts). Background checkpoints are also paced: at most one per table is
	// in flight, and a multiple of the interval is skipped unless the time since the last
	// checkpoint ended is at least nine times what that one took, so a table spends at most
	// a tenth of the time checkpointing. A table taking hundreds of small commits a second
	// with thousands of files would otherwise spend most of a core rewriting its
	// checkpoint, while readers only need one every so often to open the table quickly.
	SyncCheckpoints bool

	mu         sync.Mutex
	pacing     map[string]*checkpointPacing // per table URL
	background sync.WaitGroup
}

// checkpointPacing is what the committer remembers of one table's background checkpoints.
type checkpointPacing struct {
	inflight bool
	took     time.Duration // how long the last one took
	ended    time.Time     // when it ended
}

// checkpointDuty is the largest share of wall-clock time a table spends writing
// background checkpoints.
const checkpointDuty = 10 // 1 in 10

// Wait blocks until background checkpoints have finished (for shutdown and tests).
func (c *StorageCommitter) Wait() { c.background.Wait() }

// NewStorageCommitter returns a StorageCommitter with the defaults.
func NewStorageCommitter() *StorageCommitter {
	return &StorageCommitter{MaxRetries: 15, CheckpointInterval: 10, Logger: slog.Default(), Now: time.Now}
}

func (c *StorageCommitter) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

func (c *StorageCommitter) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Commit implements Committer.
func (c *StorageCommitter) Commit(ctx context.Context, log *Log, readVersion int64, actions []Action, opts ...CommitOption) (int64, error) {
	table := log.store
	var o commitOptions
	for _, opt := range opts {
		opt(&o)
	}
	if readVersion < -1 {
		return -1, fmt.Errorf("txlog: commit to %s: invalid read version %d", table.URL(), readVersion)
	}
	if err := validateActions(actions, readVersion); err != nil {
		return -1, fmt.Errorf("txlog: commit to %s: %w", table.URL(), err)
	}
	info := prepareCommitInfo(actions, readVersion)
	if o.writeSerializable {
		info.IsolationLevel = "WriteSerializable"
	}
	actions = withCommitInfo(actions, info)

	if readVersion == -1 {
		if o.dataDurable != nil {
			if err := o.dataDurable(); err != nil {
				return -1, err
			}
		}
		return c.create(ctx, log, info, actions)
	}
	// The latest snapshot, not the one at readVersion: under concurrent commits the cache is
	// already past readVersion, and rebuilding an older version means a load from the last
	// checkpoint on every commit. The protocol that matters is the current one, and the
	// latest timestamp is a valid lower bound for the new commit's.
	latest, err := log.snapshot(ctx, -1)
	if err != nil {
		return -1, fmt.Errorf("txlog: commit to %s: %w", table.URL(), err)
	}
	if latest.Version < readVersion {
		return -1, fmt.Errorf("txlog: commit to %s: %w: read version %d is newer than the table; the latest version is %d", table.URL(), ErrVersionNotFound, readVersion, latest.Version)
	}
	if err := latest.Protocol.CheckWrite(); err != nil {
		return -1, fmt.Errorf("txlog: commit to %s: %w", table.URL(), err)
	}
	prevTS := latest.Timestamp
	maxRetries := c.MaxRetries
	if maxRetries <= 0 {
		maxRetries = 15
	}
	version := readVersion + 1
	for attempt := 0; ; attempt++ {
		info.Timestamp = nextTimestamp(c.now(), prevTS)
		actions = stampRemoves(actions, info.Timestamp)
		data, err := EncodeActions(actions)
		if err != nil {
			return -1, err
		}
		err = c.put(ctx, table, commitKey(version), data, &o)
		if err == nil {
			committed := Commit{Version: version, Timestamp: time.UnixMilli(info.Timestamp).UTC(), Info: info, Actions: actions}
			c.maybeCheckpoint(ctx, log, version, log.advance(committed))
			return version, nil
		}
		if de, ok := err.(*dataError); ok {
			return -1, de.err
		}
		if !errors.Is(err, storage.ErrExist) {
			return -1, fmt.Errorf("txlog: commit %s version %d: %w", table.URL(), version, err)
		}
		if attempt >= maxRetries {
			return -1, fmt.Errorf("%w: table %s: gave up after %d retries at version %d; the table is too busy, retry later", ErrConflict, table.URL(), maxRetries, version)
		}
		// Somebody else committed version (and maybe more): check each winner against us.
		winners, err := log.readFrom(ctx, version)
		if err != nil {
			return -1, fmt.Errorf("txlog: commit to %s: read concurrent commits: %w", table.URL(), err)
		}
		var rearranged error
		var appends []Commit
		for _, w := range winners {
			if o.writeSerializable && summarize(w.Actions).appendOnly {
				appends = append(appends, w)
				prevTS = w.Timestamp
				version = w.Version + 1
				continue
			}
			if err := checkConflict(actions, w.Version, w.Actions); err != nil {
				if !summarize(w.Actions).rearrangeOnly {
					return -1, fmt.Errorf("table %s (read version %d): %w", table.URL(), readVersion, err)
				}
				if rearranged == nil {
					rearranged = err
				}
			}
			prevTS = w.Timestamp
			version = w.Version + 1
		}
		if len(appends) > 0 && o.checkAppends != nil {
			if err := o.checkAppends(appends); err != nil {
				if errors.Is(err, ErrConflict) {
					return -1, fmt.Errorf("table %s (read version %d): %w; retry the transaction", table.URL(), readVersion, err)
				}
				return -1, fmt.Errorf("txlog: commit to %s: checking concurrent appends: %w", table.URL(), err)
			}
		}
		if rearranged != nil {
			return -1, &RebaseError{Version: version - 1, err: fmt.Errorf("table %s (read version %d): %w", table.URL(), readVersion, rearranged)}
		}
	}
}

// put writes a commit file if absent; on the first call with o.dataDurable set, it stages
// the file while the data files finish and publishes it after them.
func (c *StorageCommitter) put(ctx context.Context, table storage.Store, key string, data []byte, o *commitOptions) error {
	wait := o.dataDurable
	if wait == nil {
		return table.PutIfAbsent(ctx, key, data)
	}
	o.dataDurable = nil // later attempts find the data durable already
	waited := make(chan error, 1)
	go func() { waited <- wait() }()
	st, err := storage.Stage(ctx, table, key, data)
	if werr := <-waited; werr != nil {
		if st != nil {
			st.Discard()
		}
		return &dataError{werr}
	}
	if err != nil {
		return err
	}
	defer st.Discard()
	return st.PublishIfAbsent(ctx, key)
}

// dataError is the failure of the data files a commit waited for, returned as is.
type dataError struct{ err error }

func (e *dataError) Error() string { return e.err.Error() }
func (e *dataError) Unwrap() error { return e.err }

// create writes version 0. Two creators race on the same name; the loser is told the table
// exists rather than retried, since its schema and id would silently replace nothing.
func (c *StorageCommitter) create(ctx context.Context, log *Log, info *CommitInfo, actions []Action) (int64, error) {
	info.Timestamp = c.now().UnixMilli()
	for i, a := range actions {
		if a.MetaData != nil && a.MetaData.CreatedTime == nil {
			m := *a.MetaData
			m.CreatedTime = &info.Timestamp
			actions[i].MetaData = &m
		}
	}
	data, err := EncodeActions(actions)
	if err != nil {
		return -1, err
	}
	err = log.store.PutIfAbsent(ctx, commitKey(0), data)
	if errors.Is(err, storage.ErrExist) {
		return -1, fmt.Errorf("%w: %s already has version 0; open the table instead of creating it", ErrTableExists, log.name())
	}
	if err != nil {
		return -1, fmt.Errorf("txlog: create %s: %w", log.name(), err)
	}
	return 0, nil
}

// stampRemoves gives removes without a deletionTimestamp the commit's timestamp: VACUUM
// measures the retention period from it.
func stampRemoves(actions []Action, ts int64) []Action {
	for i, a := range actions {
		if a.Remove != nil && a.Remove.DeletionTimestamp == nil {
			r := *a.Remove
			r.DeletionTimestamp = &ts
			actions[i].Remove = &r
		}
	}
	return actions
}

// nextTimestamp keeps commit timestamps strictly increasing (time travel by timestamp
// relies on it) even when the clock steps back or two commits land in one millisecond.
func nextTimestamp(now, prev time.Time) int64 {
	ts := now.UnixMilli()
	if p := prev.UnixMilli(); ts <= p {
		ts = p + 1
	}
	return ts
}

// validateActions rejects commits that would make the log invalid.
func validateActions(actions []Action, readVersion int64) error {
	var p, m int
	for _, a := range actions {
		if a.Protocol != nil {
			p++
		}
		if a.MetaData != nil {
			m++
			if _, err := ParseSchema(a.MetaData.SchemaString); err != nil {
				return fmt.Errorf("metaData has an invalid schemaString: %v", err)
			}
		}
		if a.Add != nil && a.Add.Path == "" || a.Remove != nil && a.Remove.Path == "" {
			return errors.New("add and remove actions need a path")
		}
	}
	if p > 1 || m > 1 {
		return errors.New("a commit may hold at most one protocol and one metaData action")
	}
	if readVersion == -1 && (p != 1 || m != 1) {
		return errors.New("creating a table needs a protocol and a metaData action")
	}
	for _, a := range actions {
		if a.Protocol != nil {
			if err := a.Protocol.CheckWrite(); err != nil {
				return err
			}
		}
	}
	return nil
}

// prepareCommitInfo returns the commitInfo to write: the caller's (copied) or a new one,
// with the fields the committer owns filled in.
func prepareCommitInfo(actions []Action, readVersion int64) *CommitInfo {
	info := &CommitInfo{Operation: "WRITE"}
	if ci := commitInfoOf(actions); ci != nil {
		cp := *ci
		info = &cp
	}
	if readVersion >= 0 {
		rv := readVersion
		info.ReadVersion = &rv
	} else {
		info.ReadVersion = nil
	}
	info.IsolationLevel = "Serializable"
	blind := isBlindAppend(actions)
	info.IsBlindAppend = &blind
	if info.EngineInfo == "" {
		info.EngineInfo = engineInfo()
	}
	return info
}

// withCommitInfo returns actions with info as the first action (where in-commit
// timestamps require it) and any caller-supplied commitInfo dropped.
func withCommitInfo(actions []Action, info *CommitInfo) []Action {
	out := make([]Action, 0, len(actions)+1)
	out = append(out, Action{CommitInfo: info})
	for _, a := range actions {
		if a.CommitInfo == nil {
			out = append(out, a)
		}
	}
	return out
}

// maybeCheckpoint writes a checkpoint after version when the interval says so. A failed
// checkpoint is logged and otherwise ignored: the commit is already durable, and readers
// fall back to older checkpoints and the JSON commits.
//
// s is the snapshot at version when the committer's cache could advance to it; otherwise
// (a concurrent commit moved the cache on) it is rebuilt, but only when a checkpoint is due:
// rebuilding an older version means a load from the last checkpoint, far too costly to do
// on every commit.
func (c *StorageCommitter) maybeCheckpoint(ctx context.Context, log *Log, version int64, s *Snapshot) {
	if version == 0 {
		return
	}
	conf := s
	if conf == nil {
		conf = log.cached()
	}
	def := c.CheckpointInterval
	if def <= 0 {
		def = 10
	}
	if conf != nil && version%checkpointInterval(conf.Metadata.Configuration, def) != 0 {
		return
	}
	if s == nil {
		var err error
		if s, err = log.snapshot(ctx, version); err != nil {
			c.logger().Warn("txlog: checkpoint skipped: cannot build snapshot", "table", log.name(), "version", version, "err", err)
			return
		}
		if version%checkpointInterval(s.Metadata.Configuration, def) != 0 {
			return
		}
	}
	if c.SyncCheckpoints {
		c.checkpoint(ctx, log, s)
		return
	}
	url := log.store.URL()
	c.mu.Lock()
	if c.pacing == nil {
		c.pacing = map[string]*checkpointPacing{}
	}
	p := c.pacing[url]
	if p == nil {
		p = &checkpointPacing{}
		c.pacing[url] = p
	}
	due := !p.inflight && (p.ended.IsZero() || c.now().Sub(p.ended) >= (checkpointDuty-1)*p.took)
	if due {
		p.inflight = true
	}
	c.mu.Unlock()
	if !due {
		return
	}
	c.background.Add(1)
	go func() {
		defer c.background.Done()
		start := c.now()
		// Not the statement's context: it ends when the statement does.
		c.checkpoint(context.Background(), log, s)
		c.mu.Lock()
		p.inflight = false
		p.ended = c.now()
		p.took = p.ended.Sub(start)
		c.mu.Unlock()
	}()
}

// checkpoint writes the checkpoint of s and then cleans up the log, as Delta does after
// each checkpoint: cleanup costs a listing, and checkpoints are paced, so a busy table
// lists its log at most as often as it checkpoints. In the background the cleanup counts
// towards the table's checkpoint time budget.
func (c *StorageCommitter) checkpoint(ctx context.Context, log *Log, s *Snapshot) {
	version := s.Version
	if err := WriteCheckpoint(ctx, log.store, s, c.now()); err != nil {
		c.logger().Warn("txlog: checkpoint failed; the commit stands", "table", log.name(), "version", version, "err", err)
		return
	}
	c.logger().Debug("txlog: wrote checkpoint", "table", log.name(), "version", version, "files", len(s.Files))
	cleanupAfterCheckpoint(ctx, log.store, s.Metadata.Configuration, c.now(), c.logger())
}
