package txlog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lakehoused/lakehoused/storage"
)

// logListing is what one List of _delta_log/ tells us: which commits and which complete
// checkpoints exist.
type logListing struct {
	commits     map[int64]storage.ObjectInfo
	versions    []int64 // commit versions, ascending
	checkpoints map[int64]checkpointFiles
	cpVersions  []int64 // complete checkpoint versions, ascending
}

// checkpointFiles are the parts of one checkpoint, in part order, and their total size.
type checkpointFiles struct {
	keys    []string
	modTime time.Time
}

// parseLogName classifies a key of _delta_log/. kind is "commit", "checkpoint" or "" (a
// file we do not use: .crc, _last_checkpoint, compacted logs, V2 UUID checkpoints, temp
// files of other writers, …). For multi-part checkpoints part and parts are 1-based.
func parseLogName(key string) (kind string, version int64, part, parts int) {
	name, ok := strings.CutPrefix(key, logDir)
	if !ok || strings.Contains(name, "/") || len(name) < 21 || name[20] != '.' {
		return "", 0, 0, 0
	}
	v, err := strconv.ParseInt(name[:20], 10, 64)
	if err != nil {
		return "", 0, 0, 0
	}
	rest := name[21:]
	switch {
	case rest == "json":
		return "commit", v, 0, 0
	case rest == "checkpoint.parquet":
		return "checkpoint", v, 1, 1
	case strings.HasPrefix(rest, "checkpoint.") && strings.HasSuffix(rest, ".parquet"):
		f := strings.Split(strings.TrimSuffix(strings.TrimPrefix(rest, "checkpoint."), ".parquet"), ".")
		if len(f) != 2 || len(f[0]) != 10 || len(f[1]) != 10 {
			return "", 0, 0, 0 // V2 UUID-named checkpoint: not supported, ignored
		}
		p, err1 := strconv.Atoi(f[0])
		n, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || p < 1 || p > n {
			return "", 0, 0, 0
		}
		return "checkpoint", v, p, n
	}
	return "", 0, 0, 0
}

// listLog lists _delta_log/ once.
func listLog(ctx context.Context, store storage.Store) (*logListing, error) {
	objs, err := store.List(ctx, logDir)
	if err != nil {
		return nil, fmt.Errorf("txlog: list log of %s: %w", store.URL(), err)
	}
	return classifyLog(objs), nil
}

// classifyLog sorts the objects of a listing of _delta_log/ into commits and complete
// checkpoints. Multi-part checkpoints with a missing part are left out, as the protocol
// requires.
func classifyLog(objs []storage.ObjectInfo) *logListing {
	l := &logListing{commits: map[int64]storage.ObjectInfo{}, checkpoints: map[int64]checkpointFiles{}}
	type partial struct {
		parts   map[int]string
		n       int
		modTime time.Time
	}
	cps := map[int64]*partial{}
	for _, o := range objs {
		kind, v, part, n := parseLogName(o.Key)
		switch kind {
		case "commit":
			l.commits[v] = o
			l.versions = append(l.versions, v)
		case "checkpoint":
			p := cps[v]
			if p == nil || (n == 1 && p.n != 1) {
				// A single-file checkpoint is preferred over a multi-part one of the same version.
				p = &partial{parts: map[int]string{}, n: n}
				cps[v] = p
			}
			if p.n != n {
				continue // parts of a different split of the same version
			}
			p.parts[part] = o.Key
			if o.ModTime.After(p.modTime) {
				p.modTime = o.ModTime
			}
		}
	}
	sort.Slice(l.versions, func(i, j int) bool { return l.versions[i] < l.versions[j] })
	for v, p := range cps {
		if len(p.parts) != p.n {
			continue
		}
		cf := checkpointFiles{modTime: p.modTime}
		for i := 1; i <= p.n; i++ {
			cf.keys = append(cf.keys, p.parts[i])
		}
		l.checkpoints[v] = cf
		l.cpVersions = append(l.cpVersions, v)
	}
	sort.Slice(l.cpVersions, func(i, j int) bool { return l.cpVersions[i] < l.cpVersions[j] })
	return l
}

// LatestListed is the newest version one listing of a table's _delta_log shows (its
// commits and complete checkpoints), or -1 when it shows none. Unlike Log.LatestVersion it
// reads no commit and keeps no state.
func LatestListed(ctx context.Context, store storage.Store) (int64, error) {
	l, err := listLog(ctx, store)
	if err != nil {
		return -1, err
	}
	return l.latest(), nil
}

func (l *logListing) empty() bool { return len(l.versions) == 0 && len(l.cpVersions) == 0 }

// latest is the newest version the listing shows.
func (l *logListing) latest() int64 {
	v := int64(-1)
	if n := len(l.versions); n > 0 {
		v = l.versions[n-1]
	}
	if n := len(l.cpVersions); n > 0 && l.cpVersions[n-1] > v {
		v = l.cpVersions[n-1]
	}
	return v
}

// earliest is the oldest version from which every version up to the newest commit can be
// reconstructed: 0 while the log still holds every commit from version 0, else the oldest
// checkpoint whose following commits are all present. Log cleanup removes a prefix of the
// log, so after it this is the checkpoint cleanup kept. A checkpoint stranded below a gap
// (its following commits deleted by hand or by another tool) rebuilds only its own version
// and must not be reported as the start of the available range: time travel by timestamp
// searches the commits from here on.
func (l *logListing) earliest() int64 {
	n := len(l.versions)
	if n == 0 {
		if len(l.cpVersions) > 0 {
			return l.cpVersions[len(l.cpVersions)-1]
		}
		return -1
	}
	// run is the first version of the run of consecutive commits ending at the newest one.
	i := n - 1
	for i > 0 && l.versions[i-1] == l.versions[i]-1 {
		i--
	}
	run := l.versions[i]
	if run == 0 {
		return 0
	}
	for _, cp := range l.cpVersions {
		if cp >= run-1 {
			return cp
		}
	}
	// No checkpoint bridges the gap: the newest versions cannot be rebuilt at all.
	if len(l.cpVersions) > 0 {
		return l.cpVersions[0]
	}
	return -1
}

// plan returns how to reconstruct version: the checkpoint to start from (-1 = replay from
// version 0) candidates, newest first, whose following commits up to version all exist.
func (l *logListing) plan(version int64) []int64 {
	var out []int64
	for i := len(l.cpVersions) - 1; i >= 0; i-- {
		cp := l.cpVersions[i]
		if cp <= version && l.hasCommits(cp+1, version) {
			out = append(out, cp)
		}
	}
	if l.hasCommits(0, version) {
		out = append(out, -1)
	}
	return out
}

func (l *logListing) hasCommits(from, to int64) bool {
	for v := from; v <= to; v++ {
		if _, ok := l.commits[v]; !ok {
			return false
		}
	}
	return true
}

// lastCheckpoint is the _last_checkpoint pointer.
type lastCheckpoint struct {
	Version       int64 `json:"version"`
	Size          int64 `json:"size"`
	Parts         *int  `json:"parts,omitempty"`
	SizeInBytes   int64 `json:"sizeInBytes,omitempty"`
	NumOfAddFiles int64 `json:"numOfAddFiles,omitempty"`
}

// keys returns the checkpoint's file keys.
func (lc lastCheckpoint) keys() []string {
	if lc.Parts == nil || *lc.Parts <= 1 {
		return []string{fmt.Sprintf("%s%020d.checkpoint.parquet", logDir, lc.Version)}
	}
	keys := make([]string, *lc.Parts)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%020d.checkpoint.%010d.%010d.parquet", logDir, lc.Version, i+1, *lc.Parts)
	}
	return keys
}

func isNotExist(err error) bool { return errors.Is(err, storage.ErrNotExist) }
