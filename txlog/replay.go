package txlog

import (
	"fmt"
	"maps"
	"sort"
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
	// Files are the live data files, sorted by Path.
	Files []*Add
	// Tombstones are removed files still kept for VACUUM, sorted by Path.
	Tombstones []*Remove
	// Txns is the latest txn per appId.
	Txns map[string]Txn
	// Domains is the live domainMetadata per domain.
	Domains map[string]DomainMetadata
	// CommitInfo is this version's own commitInfo (nil when it came from a checkpoint).
	CommitInfo *CommitInfo

	// Reconciliation state, keyed by fileKey, kept so the next Replay is incremental.
	files map[string]*Add
	tombs map[string]*Remove
	// touched collects the file keys changed during one Replay (nil otherwise).
	touched map[string]bool
}

// File returns the live file with the given path (encoded or decoded form).
func (s *Snapshot) File(path string) (*Add, bool) {
	if a, ok := s.files[fileKey(path, nil)]; ok {
		return a, true
	}
	// A file with a deletion vector is keyed with its DV id; fall back to a scan.
	dp := DecodePath(path)
	for _, a := range s.Files {
		if DecodePath(a.Path) == dp {
			return a, true
		}
	}
	return nil, false
}

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
func Replay(base *Snapshot, commits []Commit) (*Snapshot, error) {
	if len(commits) == 0 {
		if base == nil {
			return nil, fmt.Errorf("%w: nothing to replay", ErrNoTable)
		}
		return base, nil
	}
	s := &Snapshot{Version: -1, files: map[string]*Add{}, tombs: map[string]*Remove{}, Txns: map[string]Txn{}, Domains: map[string]DomainMetadata{}}
	if base != nil {
		*s = *base
		s.files = maps.Clone(base.files)
		s.tombs = maps.Clone(base.tombs)
		s.Txns = maps.Clone(base.Txns)
		s.Domains = maps.Clone(base.Domains)
		if s.files == nil {
			s.files = map[string]*Add{}
			s.tombs = map[string]*Remove{}
			for _, a := range base.Files {
				s.files[fileKey(a.Path, a.DeletionVector)] = a
			}
			for _, r := range base.Tombstones {
				s.tombs[fileKey(r.Path, r.DeletionVector)] = r
			}
		}
		if s.Txns == nil {
			s.Txns = map[string]Txn{}
		}
		if s.Domains == nil {
			s.Domains = map[string]DomainMetadata{}
		}
	}
	metaChanged := base == nil
	s.touched = map[string]bool{}
	for _, c := range commits {
		if c.Version != s.Version+1 {
			if s.Version < 0 {
				return nil, fmt.Errorf("%w: log starts at version %d without a checkpoint; version 0 is missing", ErrCorruptLog, c.Version)
			}
			return nil, fmt.Errorf("%w: version %d follows version %d; commit files are missing", ErrCorruptLog, c.Version, s.Version)
		}
		changed, err := s.apply(c.Version, c.Actions)
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
	if base != nil && base.files != nil {
		s.finishFrom(base)
	} else {
		s.finish()
	}
	s.touched = nil
	return s, nil
}

// apply reconciles one version's actions into s and reports whether protocol or metadata
// changed. Within a commit each file key has at most one add and one remove, so applying
// in line order equals the protocol's "newest wins".
func (s *Snapshot) apply(version int64, actions []Action) (metaChanged bool, err error) {
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
			k := fileKey(a.Add.Path, a.Add.DeletionVector)
			s.files[k] = a.Add
			delete(s.tombs, k)
			s.touch(k)
		case a.Remove != nil:
			if a.Remove.Path == "" {
				return false, fmt.Errorf("%w: version %d: remove without path", ErrCorruptLog, version)
			}
			k := fileKey(a.Remove.Path, a.Remove.DeletionVector)
			delete(s.files, k)
			s.tombs[k] = a.Remove
			s.touch(k)
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

func (s *Snapshot) touch(k string) {
	if s.touched != nil {
		s.touched[k] = true
	}
}

// finishFrom rebuilds the sorted slices by merging base's sorted slices (minus touched
// keys) with the touched entries, which costs O(files + k log k) instead of sorting every
// file again: the hot path of a refresh after a small commit.
func (s *Snapshot) finishFrom(base *Snapshot) {
	var adds []*Add
	var rems []*Remove
	for k := range s.touched {
		if a, ok := s.files[k]; ok {
			adds = append(adds, a)
		}
		if r, ok := s.tombs[k]; ok {
			rems = append(rems, r)
		}
	}
	sort.Slice(adds, func(i, j int) bool { return adds[i].Path < adds[j].Path })
	sort.Slice(rems, func(i, j int) bool { return rems[i].Path < rems[j].Path })
	s.Files = mergeSorted(base.Files, adds, s.touched, func(a *Add) string { return a.Path }, func(a *Add) string { return fileKey(a.Path, a.DeletionVector) })
	s.Tombstones = mergeSorted(base.Tombstones, rems, s.touched, func(r *Remove) string { return r.Path }, func(r *Remove) string { return fileKey(r.Path, r.DeletionVector) })
}

// mergeSorted merges old (dropping entries whose key was touched) with the sorted fresh
// entries, ordered by path.
func mergeSorted[T any](old, fresh []T, touched map[string]bool, path, key func(T) string) []T {
	out := make([]T, 0, len(old)+len(fresh))
	j := 0
	for _, o := range old {
		if touched[key(o)] {
			continue
		}
		for j < len(fresh) && path(fresh[j]) < path(o) {
			out = append(out, fresh[j])
			j++
		}
		out = append(out, o)
	}
	return append(out, fresh[j:]...)
}

// finish rebuilds the sorted public slices from the reconciliation maps.
func (s *Snapshot) finish() {
	s.Files = make([]*Add, 0, len(s.files))
	for _, a := range s.files {
		s.Files = append(s.Files, a)
	}
	sort.Slice(s.Files, func(i, j int) bool { return s.Files[i].Path < s.Files[j].Path })
	s.Tombstones = make([]*Remove, 0, len(s.tombs))
	for _, r := range s.tombs {
		s.Tombstones = append(s.Tombstones, r)
	}
	sort.Slice(s.Tombstones, func(i, j int) bool { return s.Tombstones[i].Path < s.Tombstones[j].Path })
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
	s := &Snapshot{Version: version, Timestamp: ts, files: map[string]*Add{}, tombs: map[string]*Remove{}, Txns: map[string]Txn{}, Domains: map[string]DomainMetadata{}}
	if _, err := s.apply(-1, actions); err != nil {
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
	s.finish()
	return s, nil
}
