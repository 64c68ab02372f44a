package txlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/lakehoused/lakehoused/storage"
)

// Log is one table's Delta log. Its store is rooted at the table directory, so the log's
// keys are "_delta_log/…". A Log caches the latest snapshot and brings it up to date by
// reading only the commit files written since, which keeps a commit followed by a refresh
// on a hot table at a couple of small reads instead of a replay of the whole log.
// A Log is safe for concurrent use.
type Log struct {
	store  storage.Store
	logger *slog.Logger

	mu     sync.Mutex // serialises refreshes of latest
	latest *Snapshot

	tsMu sync.Mutex
	ts   map[int64]time.Time // commit timestamps; immutable once written, so cached forever
}

// NewLog returns the log of the table rooted at store.
func NewLog(store storage.Store) *Log {
	return &Log{store: store, logger: slog.Default(), ts: map[int64]time.Time{}}
}

// SetLogger sends the log's warnings (unusable checkpoints, ignored pointers) to logger
// instead of slog.Default(). Call it before first use.
func (l *Log) SetLogger(logger *slog.Logger) {
	if logger != nil {
		l.logger = logger
	}
}

// Store is the table's store.
func (l *Log) Store() storage.Store { return l.store }

func (l *Log) name() string { return l.store.URL() }

// LatestVersion is the newest committed version, or an error wrapping ErrNoTable.
func (l *Log) LatestVersion(ctx context.Context) (int64, error) {
	s, err := l.refresh(ctx)
	if err != nil {
		return -1, err
	}
	return s.Version, nil
}

// Snapshot returns the table at version (version < 0: the latest). It fails with
// ErrUnsupportedFeature for tables lakehoused cannot read correctly.
func (l *Log) Snapshot(ctx context.Context, version int64) (*Snapshot, error) {
	s, err := l.snapshot(ctx, version)
	if err != nil {
		return nil, err
	}
	if err := s.CheckRead(); err != nil {
		return nil, fmt.Errorf("table %s version %d: %w", l.name(), s.Version, err)
	}
	return s, nil
}

// snapshot is Snapshot without the feature check (the committer and LatestVersion use it).
func (l *Log) snapshot(ctx context.Context, version int64) (*Snapshot, error) {
	if version >= 0 {
		l.mu.Lock()
		cached := l.latest
		l.mu.Unlock()
		if cached != nil && version == cached.Version {
			return cached, nil
		}
		if cached != nil && version < cached.Version {
			return l.load(ctx, version)
		}
	}
	latest, err := l.refresh(ctx)
	if err != nil {
		if version >= 0 && !errors.Is(err, ErrNoTable) {
			// A damaged or unreadable newer commit must not hide older versions.
			if s, lerr := l.load(ctx, version); lerr == nil {
				return s, nil
			}
		}
		return nil, err
	}
	if version < 0 || version == latest.Version {
		return latest, nil
	}
	if version > latest.Version {
		earliest := int64(0)
		if listing, err := listLog(ctx, l.store); err == nil {
			earliest = listing.earliest()
		}
		return nil, fmt.Errorf("%w: table %s has no version %d; available versions are %d to %d (the latest version is %d)", ErrVersionNotFound, l.name(), version, earliest, latest.Version, latest.Version)
	}
	return l.load(ctx, version)
}

// refresh returns the latest snapshot, reading only commits newer than the cached one.
func (l *Log) refresh(ctx context.Context) (*Snapshot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.latest == nil {
		s, err := l.loadLatest(ctx)
		if err != nil {
			return nil, err
		}
		l.latest = s
		return s, nil
	}
	commits, err := l.readFrom(ctx, l.latest.Version+1)
	if err != nil {
		return nil, err
	}
	if len(commits) == 0 {
		return l.latest, nil
	}
	s, err := Replay(l.latest, commits)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", l.name(), err)
	}
	l.latest = s
	return s, nil
}

// advance installs the snapshot after a commit this process just wrote, so the committer
// need not read back its own file. It is a no-op unless c directly follows the cache.
func (l *Log) advance(c Commit) *Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.latest == nil || l.latest.Version+1 != c.Version {
		return nil
	}
	s, err := Replay(l.latest, []Commit{c})
	if err != nil {
		return nil
	}
	l.latest = s
	l.rememberTS(c.Version, c.Timestamp)
	return s
}

// cached returns the latest snapshot in memory, if any, without I/O.
func (l *Log) cached() *Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.latest
}

// readFrom reads consecutive commits from version on until one does not exist. Commit
// files are contiguous by protocol, so probing by name replaces a listing of the log.
func (l *Log) readFrom(ctx context.Context, from int64) ([]Commit, error) {
	var out []Commit
	for v := from; ; v++ {
		c, err := l.readCommit(ctx, v, time.Time{})
		if isNotExist(err) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// readCommit reads and parses commit file v. modTime, when known from a listing, saves a
// Stat for commits without a commitInfo timestamp.
func (l *Log) readCommit(ctx context.Context, v int64, modTime time.Time) (Commit, error) {
	key := commitKey(v)
	data, err := l.store.Get(ctx, key)
	if err != nil {
		return Commit{}, fmt.Errorf("txlog: read %s/%s: %w", l.name(), key, err)
	}
	actions, err := ParseActions(l.name()+"/"+key, data)
	if err != nil {
		return Commit{}, err
	}
	info := commitInfoOf(actions)
	if (info == nil || (info.Timestamp <= 0 && info.InCommitTimestamp == nil)) && modTime.IsZero() {
		if st, err := l.store.Stat(ctx, key); err == nil {
			modTime = st.ModTime
		}
	}
	c := Commit{Version: v, Info: info, Actions: actions, Timestamp: commitTimestamp(info, modTime)}
	l.rememberTS(v, c.Timestamp)
	return c, nil
}

func (l *Log) rememberTS(v int64, ts time.Time) {
	l.tsMu.Lock()
	l.ts[v] = ts
	l.tsMu.Unlock()
}

// commitTime returns the commit timestamp of version v (cached).
func (l *Log) commitTime(ctx context.Context, v int64, modTime time.Time) (time.Time, error) {
	l.tsMu.Lock()
	ts, ok := l.ts[v]
	l.tsMu.Unlock()
	if ok {
		return ts, nil
	}
	c, err := l.readCommit(ctx, v, modTime)
	if err != nil {
		return time.Time{}, err
	}
	return c.Timestamp, nil
}

// loadLatest builds the latest snapshot from scratch: from the checkpoint _last_checkpoint
// names plus the commits after it, or, when the pointer is missing or wrong, from a listing.
func (l *Log) loadLatest(ctx context.Context) (*Snapshot, error) {
	if base, err := l.loadLastCheckpoint(ctx); err == nil && base != nil {
		commits, err := l.readFrom(ctx, base.Version+1)
		if err != nil {
			return nil, err
		}
		s, err := Replay(base, commits)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", l.name(), err)
		}
		return s, nil
	} else if err != nil {
		l.logger.Warn("txlog: ignoring _last_checkpoint; falling back to listing the log", "table", l.name(), "err", err)
	}
	listing, err := listLog(ctx, l.store)
	if err != nil {
		return nil, err
	}
	if listing.empty() {
		return nil, fmt.Errorf("%w: %s has no _delta_log (no commit or checkpoint files)", ErrNoTable, l.name())
	}
	s, err := l.build(ctx, listing, listing.latest())
	if err != nil {
		return nil, err
	}
	// Commits may have landed after the listing.
	more, err := l.readFrom(ctx, s.Version+1)
	if err != nil {
		return nil, err
	}
	if len(more) > 0 {
		if s, err = Replay(s, more); err != nil {
			return nil, fmt.Errorf("table %s: %w", l.name(), err)
		}
	}
	return s, nil
}

// loadLastCheckpoint reads the checkpoint _last_checkpoint points to. (nil, nil) means
// there is no pointer; an error means the pointer is unusable and the caller should list.
func (l *Log) loadLastCheckpoint(ctx context.Context) (*Snapshot, error) {
	data, err := l.store.Get(ctx, lastCheckpointKey)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var lc lastCheckpoint
	if err := json.Unmarshal(data, &lc); err != nil {
		return nil, fmt.Errorf("parse _last_checkpoint: %w", err)
	}
	if lc.Version < 0 {
		return nil, fmt.Errorf("_last_checkpoint names version %d", lc.Version)
	}
	actions, err := readCheckpoint(ctx, l.store, lc.keys())
	if err != nil {
		return nil, err
	}
	if lc.Size > 0 && int64(len(actions)) != lc.Size {
		return nil, fmt.Errorf("_last_checkpoint says checkpoint %d has %d actions, it has %d", lc.Version, lc.Size, len(actions))
	}
	return l.checkpointSnapshot(ctx, lc.Version, actions, time.Time{})
}

// checkpointSnapshot turns a checkpoint's actions into the snapshot at version, taking
// the timestamp from that version's commit file when it still exists.
func (l *Log) checkpointSnapshot(ctx context.Context, version int64, actions []Action, modTime time.Time) (*Snapshot, error) {
	ts, err := l.commitTime(ctx, version, time.Time{})
	if err != nil {
		ts = modTime
		if ts.IsZero() {
			if st, err := l.store.Stat(ctx, fmt.Sprintf("%s%020d.checkpoint.parquet", logDir, version)); err == nil {
				ts = st.ModTime
			}
		}
	}
	s, err := snapshotFromCheckpoint(version, ts, actions)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", l.name(), err)
	}
	return s, nil
}

// load builds the snapshot at an older version from a listing (time travel).
func (l *Log) load(ctx context.Context, version int64) (*Snapshot, error) {
	listing, err := listLog(ctx, l.store)
	if err != nil {
		return nil, err
	}
	if listing.empty() {
		return nil, fmt.Errorf("%w: %s has no _delta_log", ErrNoTable, l.name())
	}
	return l.build(ctx, listing, version)
}

// build reconstructs version from the newest usable checkpoint at or below it, falling
// back to older checkpoints (or to version 0) when one cannot be read.
func (l *Log) build(ctx context.Context, listing *logListing, version int64) (*Snapshot, error) {
	plans := listing.plan(version)
	if len(plans) == 0 {
		earliest, hint := listing.earliest(), ""
		if earliest > 0 && version < earliest {
			hint = "; the log files of older versions have been removed (log cleanup keeps delta.logRetentionDuration of history, default 30 days; raise it to keep more)"
		}
		return nil, fmt.Errorf("%w: table %s cannot reconstruct version %d; available versions are %d to %d%s", ErrVersionNotFound, l.name(), version, earliest, listing.latest(), hint)
	}
	var firstErr error
	for _, cp := range plans {
		var base *Snapshot
		from := int64(0)
		if cp >= 0 {
			cf := listing.checkpoints[cp]
			actions, err := readCheckpoint(ctx, l.store, cf.keys)
			if err == nil {
				base, err = l.checkpointSnapshot(ctx, cp, actions, cf.modTime)
			}
			if err != nil {
				l.logger.Warn("txlog: skipping unreadable checkpoint", "table", l.name(), "version", cp, "err", err)
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			from = cp + 1
		}
		commits := make([]Commit, 0, version-from+1)
		for v := from; v <= version; v++ {
			c, err := l.readCommit(ctx, v, listing.commits[v].ModTime)
			if err != nil {
				return nil, err
			}
			commits = append(commits, c)
		}
		s, err := Replay(base, commits)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", l.name(), err)
		}
		return s, nil
	}
	return nil, firstErr
}

// SnapshotAt returns the snapshot of the latest version whose commit timestamp is at or
// before ts.
func (l *Log) SnapshotAt(ctx context.Context, ts time.Time) (*Snapshot, error) {
	latest, err := l.refresh(ctx)
	if err != nil {
		return nil, err
	}
	if !latest.Timestamp.After(ts) {
		return l.Snapshot(ctx, latest.Version)
	}
	listing, err := listLog(ctx, l.store)
	if err != nil {
		return nil, err
	}
	first := listing.earliest()
	var versions []int64
	for _, v := range listing.versions {
		if v >= first && v <= latest.Version {
			versions = append(versions, v)
		}
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("%w: table %s has no commit files to search by time", ErrVersionNotFound, l.name())
	}
	// Commit timestamps increase with the version (the committer enforces it), so a binary
	// search reads only log2(n) commit files.
	var searchErr error
	i := sort.Search(len(versions), func(i int) bool {
		t, err := l.commitTime(ctx, versions[i], listing.commits[versions[i]].ModTime)
		if err != nil && searchErr == nil {
			searchErr = err
		}
		return t.After(ts)
	})
	if searchErr != nil {
		return nil, searchErr
	}
	if i == 0 {
		t0, _ := l.commitTime(ctx, versions[0], listing.commits[versions[0]].ModTime)
		return nil, fmt.Errorf("%w: table %s: %s is before the first available commit (version %d at %s)", ErrBeforeFirstCommit, l.name(), ts.UTC().Format(time.RFC3339Nano), versions[0], t0.Format(time.RFC3339Nano))
	}
	return l.Snapshot(ctx, versions[i-1])
}

// History returns the commits newest first; limit <= 0 returns all that still exist.
func (l *Log) History(ctx context.Context, limit int) ([]Commit, error) {
	listing, err := listLog(ctx, l.store)
	if err != nil {
		return nil, err
	}
	if listing.empty() {
		return nil, fmt.Errorf("%w: %s has no _delta_log", ErrNoTable, l.name())
	}
	var out []Commit
	for i := len(listing.versions) - 1; i >= 0; i-- {
		if limit > 0 && len(out) >= limit {
			break
		}
		v := listing.versions[i]
		c, err := l.readCommit(ctx, v, listing.commits[v].ModTime)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
