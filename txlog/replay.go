package txlog

import (
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"
)

// Snapshot is the state of a table at one version: the result of replaying the log up to
// and including that version. A Snapshot is immutable once returned; callers share it.
type Snapshot struct {
	Version   int64
	Timestamp time.Time // commit timestamp of this version
	Protocol  Protocol
	Metadata  Metadata
	Schema    *Schema // parsed Metadata.SchemaString
	// Files are the live data files, sorted by their key: the decoded path, then the
	// deletion vector's id (for paths without %-escapes and deletion vectors, by Path).
	Files []*Add
	// Tombstones are removed files still kept for VACUUM, sorted the same way.
	Tombstones []*Remove
	// Txns is the latest txn per appId.
	Txns map[string]Txn
	// Domains is the live domainMetadata per domain.
	Domains map[string]DomainMetadata
	// CommitInfo is this version's own commitInfo (nil when it came from a checkpoint).
	CommitInfo *CommitInfo
}

// File returns the live file with the given path (encoded or decoded form).
func (s *Snapshot) File(path string) (*Add, bool) {
	dp := DecodePath(path)
	// A file with a deletion vector is keyed "path#id", which sorts right after "path".
	i := sort.Search(len(s.Files), func(i int) bool { return addKey(s.Files[i]) >= dp })
	for ; i < len(s.Files); i++ {
		a := s.Files[i]
		if DecodePath(a.Path) == dp {
			return a, true
		}
		if !strings.HasPrefix(addKey(a), dp) {
			break
		}
	}
	return nil, false
}

func addKey(a *Add) string       { return fileKey(a.Path, a.DeletionVector) }
func removeKey(r *Remove) string { return fileKey(r.Path, r.DeletionVector) }

// Commit is one version of the log with its parsed actions.
type Commit struct {
	Version   int64
	Timestamp time.Time
	Info      *CommitInfo
	Actions   []Action
}

// Replay applies commits, in order, on top of base and returns the new snapshot. base may
// be nil (an empty table; the first commit must then be version 0). base is not modified.
// Replay does no I/O, so it is tested with plain values and reused by the checkpoint
// loader, the incremental cache and the conflict-free retry path alike.
//
// Only the files the commits touch are looked at one by one: they are reconciled in a
// small map, and the new sorted lists are the base's with those entries taken out (found
// by binary search) and the new ones merged in, so a small commit on a table of many files
// costs a copy of two slices rather than rehashing every file.
func Replay(base *Snapshot, commits []Commit) (*Snapshot, error) {
	if len(commits) == 0 {
		if base == nil {
			return nil, fmt.Errorf("%w: nothing to replay", ErrNoTable)
		}
		return base, nil
	}
	s := &Snapshot{Version: -1, Txns: map[string]Txn{}, Domains: map[string]DomainMetadata{}}
	if base != nil {
		*s = *base
		s.Txns = maps.Clone(base.Txns)
		s.Domains = maps.Clone(base.Domains)
		if s.Txns == nil {
			s.Txns = map[string]Txn{}
		}
		if s.Domains == nil {
			s.Domains = map[string]DomainMetadata{}
		}
	}
	metaChanged := base == nil
	d := newDelta()
	for _, c := range commits {
		if c.Version != s.Version+1 {
			if s.Version < 0 {
				return nil, fmt.Errorf("%w: log starts at version %d without a checkpoint; version 0 is missing", ErrCorruptLog, c.Version)
			}
			return nil, fmt.Errorf("%w: version %d follows version %d; commit files are missing", ErrCorruptLog, c.Version, s.Version)
		}
		changed, err := s.apply(c.Version, c.Actions, d)
		if err != nil {
			return nil, err
		}
		metaChanged = metaChanged || changed
		s.Version = c.Version
		s.Timestamp = c.Timestamp
		s.CommitInfo = c.Info
	}
	if s.Protocol.MinReaderVersion == 0 || s.Metadata.SchemaString == "" {
		return nil, fmt.Errorf("%w: version %d has no protocol or metaData (the first commit must contain both)", ErrCorruptLog, s.Version)
	}
	if metaChanged || s.Schema == nil {
		sc, err := ParseSchema(s.Metadata.SchemaString)
		if err != nil {
			return nil, fmt.Errorf("%w: version %d: schemaString: %v", ErrCorruptLog, s.Version, err)
		}
		s.Schema = sc
	}
	var baseFiles []*Add
	var baseTombs []*Remove
	if base != nil {
		baseFiles, baseTombs = base.Files, base.Tombstones
	}
	s.Files = mergeSorted(baseFiles, d.adds, addKey)
	s.Tombstones = mergeSorted(baseTombs, d.tombs, removeKey)
	return s, nil
}

// delta reconciles the file actions of the commits being replayed, by file key: the last
// action on a key wins. A nil value means the key is no longer live (for adds) or no
// longer a tombstone (for tombstones).
type delta struct {
	adds  map[string]*Add
	tombs map[string]*Remove
}

func newDelta() *delta { return &delta{adds: map[string]*Add{}, tombs: map[string]*Remove{}} }

// apply reconciles one version's actions into s and d and reports whether protocol or
// metadata changed. Within a commit each file key has at most one add and one remove, so
// applying in line order equals the protocol's "newest wins".
func (s *Snapshot) apply(version int64, actions []Action, d *delta) (metaChanged bool, err error) {
	if version == 0 {
		var hasP, hasM bool
		for _, a := range actions {
			hasP = hasP || a.Protocol != nil
			hasM = hasM || a.MetaData != nil
		}
		if !hasP || !hasM {
			return false, fmt.Errorf("%w: version 0 must contain protocol and metaData actions (has protocol=%v, metaData=%v)", ErrCorruptLog, hasP, hasM)
		}
	}
	for _, a := range actions {
		switch {
		case a.Protocol != nil:
			s.Protocol = *a.Protocol
			metaChanged = true
		case a.MetaData != nil:
			s.Metadata = *a.MetaData
			metaChanged = true
		case a.Add != nil:
			if a.Add.Path == "" {
				return false, fmt.Errorf("%w: version %d: add without path", ErrCorruptLog, version)
			}
			k := addKey(a.Add)
			d.adds[k] = a.Add
			d.tombs[k] = nil
		case a.Remove != nil:
			if a.Remove.Path == "" {
				return false, fmt.Errorf("%w: version %d: remove without path", ErrCorruptLog, version)
			}
			k := removeKey(a.Remove)
			d.adds[k] = nil
			d.tombs[k] = a.Remove
		case a.Txn != nil:
			s.Txns[a.Txn.AppID] = *a.Txn
		case a.Domain != nil:
			if a.Domain.Removed {
				delete(s.Domains, a.Domain.Domain)
			} else {
				s.Domains[a.Domain.Domain] = *a.Domain
			}
		}
	}
	return metaChanged, nil
}

// mergeSorted returns old (sorted by key) with every key in changes taken out and the
// non-nil values of changes merged in, sorted by key. old is not modified. Keys present
// in old are found by binary search, so the cost is a copy of old plus O(k log n) for k
// changes, whatever the size of old.
func mergeSorted[E any](old []*E, changes map[string]*E, key func(*E) string) []*E {
	if len(changes) == 0 {
		return old
	}
	keys := make([]string, 0, len(changes))
	for k := range changes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*E, 0, len(old)+len(keys))
	i := 0
	for _, k := range keys {
		// Copy the run of old before k, drop old's entry with k, insert the new value.
		j := i + sort.Search(len(old)-i, func(n int) bool { return key(old[i+n]) >= k })
		out = append(out, old[i:j]...)
		i = j
		if i < len(old) && key(old[i]) == k {
			i++
		}
		if v := changes[k]; v != nil {
			out = append(out, v)
		}
	}
	return append(out, old[i:]...)
}

// commitTimestamp is the time travel timestamp of a commit: inCommitTimestamp when the
// table uses in-commit timestamps, else commitInfo.timestamp, else the file's mtime.
func commitTimestamp(info *CommitInfo, modTime time.Time) time.Time {
	switch {
	case info != nil && info.InCommitTimestamp != nil:
		return time.UnixMilli(*info.InCommitTimestamp).UTC()
	case info != nil && info.Timestamp > 0:
		return time.UnixMilli(info.Timestamp).UTC()
	}
	return modTime.UTC()
}

// commitInfoOf returns the first commitInfo among actions, or nil.
func commitInfoOf(actions []Action) *CommitInfo {
	for _, a := range actions {
		if a.CommitInfo != nil {
			return a.CommitInfo
		}
	}
	return nil
}

// snapshotFromCheckpoint builds the snapshot at version from a checkpoint's actions: the
// already-reconciled state, applied as one pseudo-commit.
func snapshotFromCheckpoint(version int64, ts time.Time, actions []Action) (*Snapshot, error) {
	s := &Snapshot{Version: version, Timestamp: ts, Txns: map[string]Txn{}, Domains: map[string]DomainMetadata{}}
	d := newDelta()
	if _, err := s.apply(-1, actions, d); err != nil {
		return nil, err
	}
	if s.Protocol.MinReaderVersion == 0 || s.Metadata.SchemaString == "" {
		return nil, fmt.Errorf("%w: checkpoint %d has no protocol or metaData", ErrCorruptLog, version)
	}
	sc, err := ParseSchema(s.Metadata.SchemaString)
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint %d: schemaString: %v", ErrCorruptLog, version, err)
	}
	s.Schema = sc
	s.Files = mergeSorted(nil, d.adds, addKey)
	s.Tombstones = mergeSorted(nil, d.tombs, removeKey)
	return s, nil
}
