package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"sort"
	"sync"

	"github.com/hashicorp/raft"
)

// The replicated state: for each table, the last ratified version, the content hashes of
// recent versions (so a retried commit is recognised as the same one) and the commits
// ratified but not yet published as _delta_log/<v>.json. Commands are JSON; Apply is
// deterministic and does no I/O.

// Commit is one table version to ratify.
type Commit struct {
	Table   string `json:"table"`   // the table's URL
	Version int64  `json:"version"` // the version this commit becomes
	Hash    string `json:"hash"`    // sha256 of Data, hex
	Data    []byte `json:"data"`    // the commit file's bytes
	// Base is the latest version the proposer found published, used only when the cluster
	// has not seen the table before (its history predates the cluster, or it is new: -1).
	Base int64 `json:"base"`
	// atomic: ratified with other tables' commits in one entry (set by pending).
	atomic bool
}

type command struct {
	// ratify: take Commits (after marking Versions published). catalog: a node changed
	// the catalog (tell every node). published: Versions are
	// written, drop their bytes. void:
	// Versions were taken in storage by writers outside the cluster before they could be
	// published; they are no longer ours. unratify: Commits could not be published and
	// their statements fail. forget: Tables were dropped.
	Op       string    `json:"op"`
	Commits  []Commit  `json:"commits,omitempty"`
	Versions []Version `json:"versions,omitempty"`
	Tables   []string  `json:"tables,omitempty"`
}

// Version names one table version.
type Version struct {
	Table   string `json:"table"`
	Version int64  `json:"version"`
}

// recentHashes is how many versions per table keep their hash for recognising retries.
const recentHashes = 1024

type tableState struct {
	Latest  int64            `json:"latest"`
	Hashes  map[int64]string `json:"hashes"`  // recent versions
	Pending map[int64][]byte `json:"pending"` // ratified, not yet published
	// Atomic marks pending versions ratified together with other tables' commits: they
	// are never undone alone.
	Atomic map[int64]bool `json:"atomic,omitempty"`
}

// ratifyResult is what Apply returns for a ratify command.
type ratifyResult struct {
	// Conflict names a commit whose version another commit already took.
	Conflict *Version
	// Err is a commit that cannot be ratified (a gap in the versions).
	Err error
}

type fsm struct {
	mu     sync.RWMutex
	tables map[string]*tableState
	// onCatalog is told of catalog changes (it must not block: it marks the node's
	// catalog stale); onForget of dropped tables.
	onCatalog func()
	onForget  func(tables []string)
}

func newFSM(onCatalog func(), onForget func([]string)) *fsm {
	return &fsm{tables: map[string]*tableState{}, onCatalog: onCatalog, onForget: onForget}
}

func (f *fsm) Apply(l *raft.Log) any {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return &ratifyResult{Err: fmt.Errorf("cluster: undecodable log entry %d: %v", l.Index, err)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch c.Op {
	case "ratify":
		f.published(c.Versions) // what the leader published since its last command
		return f.ratify(c.Commits)
	case "published":
		f.published(c.Versions)
		return nil
	case "void":
		// The version is someone else's commit now: what we ratified at it and after it
		// (nothing after it can have been ratified, publication being in order) is dropped;
		// the table's latest stays at the void version, which storage holds.
		for _, v := range c.Versions {
			if st := f.tables[v.Table]; st != nil {
				f.dropFrom(st, v.Version)
				st.Latest = v.Version
			}
		}
		return nil
	case "unratify":
		// Commits that could not be published, undone so that their statements fail
		// without a trace, with every version ratified after them (publication being in
		// order, none of those is published either): only if still unpublished.
		for _, cm := range c.Commits {
			st := f.tables[cm.Table]
			if st == nil || st.Hashes[cm.Version] != cm.Hash {
				continue
			}
			if _, ok := st.Pending[cm.Version]; !ok {
				continue
			}
			f.dropFrom(st, cm.Version)
			st.Latest = cm.Version - 1
		}
		return nil
	case "catalog":
		// A node changed the catalog in the warehouse: every node reads it again.
		if f.onCatalog != nil {
			f.onCatalog()
		}
		return nil
	case "forget":
		for _, t := range c.Tables {
			delete(f.tables, t)
		}
		if f.onForget != nil {
			f.onForget(c.Tables)
		}
		return nil
	}
	return &ratifyResult{Err: fmt.Errorf("cluster: unknown command %q in log entry %d", c.Op, l.Index)}
}

// dropFrom forgets the unpublished versions from v on.
func (f *fsm) dropFrom(st *tableState, v int64) {
	for pv := range st.Pending {
		if pv >= v {
			delete(st.Pending, pv)
			delete(st.Hashes, pv)
			delete(st.Atomic, pv)
		}
	}
}

// published drops the bytes of versions written to storage.
func (f *fsm) published(vs []Version) {
	for _, v := range vs {
		if st := f.tables[v.Table]; st != nil {
			for pv := range st.Pending {
				if pv <= v.Version {
					delete(st.Pending, pv)
					delete(st.Atomic, pv)
				}
			}
		}
	}
}

// ratify takes all the commits or none: each must be the version after the table's
// latest, or a version already ratified with the same content (a retry).
func (f *fsm) ratify(commits []Commit) *ratifyResult {
	next := map[string]int64{}
	for _, c := range commits {
		st := f.tables[c.Table]
		latest := c.Base
		if st != nil {
			latest = st.Latest
			// Versions published by writers outside the cluster, which the proposer saw in
			// storage: the table has moved on without us (only when nothing of ours waits).
			if c.Base > latest && len(st.Pending) == 0 {
				latest = c.Base
			}
		}
		if n, ok := next[c.Table]; ok {
			latest = n
		}
		switch {
		case c.Version <= latest:
			if st != nil && st.Hashes[c.Version] == c.Hash {
				continue // ratified already: the same commit again
			}
			return &ratifyResult{Conflict: &Version{c.Table, c.Version}}
		case c.Version != latest+1:
			return &ratifyResult{Err: fmt.Errorf("%w: %s version %d cannot be ratified before version %d", ErrGap, c.Table, c.Version, latest+1)}
		}
		next[c.Table] = c.Version
	}
	for _, c := range commits {
		st := f.tables[c.Table]
		if st == nil {
			st = &tableState{Latest: c.Base, Hashes: map[int64]string{}, Pending: map[int64][]byte{}}
			f.tables[c.Table] = st
		}
		if c.Version <= st.Latest && st.Hashes[c.Version] == c.Hash {
			continue
		}
		st.Latest = c.Version
		st.Hashes[c.Version] = c.Hash
		st.Pending[c.Version] = c.Data
		if len(commits) > 1 {
			if st.Atomic == nil {
				st.Atomic = map[int64]bool{}
			}
			st.Atomic[c.Version] = true
		}
		delete(st.Hashes, c.Version-recentHashes)
	}
	return &ratifyResult{}
}

// known returns the table's latest ratified version, or false when the cluster has not
// seen it.
func (f *fsm) known(table string) (int64, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := f.tables[table]
	if st == nil {
		return 0, false
	}
	return st.Latest, true
}

// hash is the content hash of a ratified version still remembered, or "".
func (f *fsm) hash(table string, v int64) string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if st := f.tables[table]; st != nil {
		return st.Hashes[v]
	}
	return ""
}

// commitState is where a ratified commit stands.
type commitState int

const (
	stateGone      commitState = iota // not (or no longer) ratified: voided, undone or never
	statePending                      // ratified, not known to be published
	statePublished                    // ratified and recorded as published
)

// state reports where commit c stands, and the table's latest ratified version.
func (f *fsm) state(c Commit) (commitState, int64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := f.tables[c.Table]
	if st == nil {
		return stateGone, -1
	}
	if st.Hashes[c.Version] != c.Hash || c.Version > st.Latest {
		return stateGone, st.Latest
	}
	if _, ok := st.Pending[c.Version]; ok {
		return statePending, st.Latest
	}
	return statePublished, st.Latest
}

// pending returns the ratified, unpublished commits of table (all tables when table is
// ""), in table and version order.
func (f *fsm) pending(table string) []Commit {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []Commit
	for t, st := range f.tables {
		if table != "" && t != table {
			continue
		}
		for v, d := range st.Pending {
			out = append(out, Commit{Table: t, Version: v, Data: d, Hash: st.Hashes[v], atomic: st.Atomic[v]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Table != out[j].Table {
			return out[i].Table < out[j].Table
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// digest is a canonical rendering of the state, for comparing nodes in tests.
func (f *fsm) digest() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, _ := json.Marshal(f.tables) // map keys are sorted
	return string(b)
}

// Snapshot captures the state (a copy of the maps: the commit bytes are shared, never
// changed); Persist encodes it straight into the snapshot sink while Apply goes on, so a
// large state is not held twice in memory as one buffer.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	tables := make(map[string]*tableState, len(f.tables))
	for t, st := range f.tables {
		tables[t] = &tableState{Latest: st.Latest, Hashes: maps.Clone(st.Hashes), Pending: maps.Clone(st.Pending), Atomic: maps.Clone(st.Atomic)}
	}
	return snapshot(tables), nil
}

func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	tables := map[string]*tableState{}
	if err := json.NewDecoder(r).Decode(&tables); err != nil {
		return fmt.Errorf("cluster: restoring a snapshot: %w", err)
	}
	for _, st := range tables {
		if st.Hashes == nil {
			st.Hashes = map[int64]string{}
		}
		if st.Pending == nil {
			st.Pending = map[int64][]byte{}
		}
	}
	f.mu.Lock()
	f.tables = tables
	f.mu.Unlock()
	if f.onCatalog != nil {
		f.onCatalog() // announcements the snapshot replaced are not replayed
	}
	return nil
}

type snapshot map[string]*tableState

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(map[string]*tableState(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s snapshot) Release() {}
