package txlog

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lakehoused/lakehoused/storage"
)

// Log cleanup is Delta's metadata retention: without it _delta_log/ grows by a file per
// commit forever, and every listing of it (time travel, a cold open whose pointer is
// stale) grows with it. Cleanup deletes the files of versions that are both older than
// delta.logRetentionDuration and no longer needed to rebuild any version inside it.

// DefaultLogRetention is the default of delta.logRetentionDuration, as in Delta.
const DefaultLogRetention = 30 * 24 * time.Hour

// LogRetention is the table's delta.logRetentionDuration ("interval 30 days"): how long
// log files are kept, and so how far back time travel reaches. A value that does not
// parse (or a month or year interval, which Delta refuses) counts as the 30-day default,
// never as zero: a typo in a property must not delete history.
func LogRetention(conf map[string]string) time.Duration {
	if d, ok := parseInterval(conf["delta.logRetentionDuration"]); ok {
		return d
	}
	return DefaultLogRetention
}

// ExpiredLogCleanupEnabled is delta.enableExpiredLogCleanup: true unless the property is
// "false" (any case), as in Delta.
func ExpiredLogCleanupEnabled(conf map[string]string) bool {
	return !strings.EqualFold(strings.TrimSpace(conf["delta.enableExpiredLogCleanup"]), "false")
}

// CleanupResult is what CleanupLog did.
type CleanupResult struct {
	// Cutoff is now minus the retention; only files older than it were candidates.
	Cutoff time.Time
	// KeptCheckpoint is the newest checkpoint written at or before Cutoff, the new start
	// of the log: the files of older versions were deleted (up to the first version with
	// a file newer than Cutoff, see CleanupLog), and every version from it on can still
	// be rebuilt. It is -1 when there was nothing to delete: no such checkpoint, or no
	// file of an older version left.
	KeptCheckpoint int64
	// EarliestVersion is the oldest version that can still be rebuilt, after cleanup;
	// older ones give ErrVersionNotFound. -1 when the log has no usable start.
	EarliestVersion int64
	// CommitsDeleted counts <v>.json files, CheckpointsDeleted checkpoints (a multi-part
	// one counts once), OtherFilesDeleted the rest of the deleted versions' files (.crc,
	// compacted logs, V2 checkpoints, leftovers of other writers).
	CommitsDeleted, CheckpointsDeleted, OtherFilesDeleted int
}

// CleanupLog deletes the log files of store's table that retention no longer covers, by
// Delta's rule: it keeps the newest checkpoint written at or before now - retention
// and every file from its version on, and deletes the files of older versions. The kept
// checkpoint rebuilds the version that was current at the cutoff, so time travel to any
// version or timestamp inside the retention period keeps working, and the latest
// checkpoint is never deleted. With no checkpoint at or before the cutoff nothing is
// deleted. It is safe to run concurrently with commits, readers and another cleanup;
// a reader time-travelling outside retention while it runs may fail on a vanished file.
//
// A file's age is its modification time from the listing, as in Delta: it costs no read,
// and it is what tells when a file was really written. The kept checkpoint must also be
// old by the timestamp of its version's commit, which is what time travel by timestamp
// searches; the two disagree only under clock skew or when a table was copied without
// its modification times, and the newer of the two wins, so a disagreement keeps files
// rather than deleting them. Below the kept checkpoint, versions go oldest first and
// cleanup stops at the first one with a file newer than the cutoff: modification times
// need not grow with the version, and what is deleted must stay a prefix of the log,
// never leaving a gap that readers would have to step over. The kept checkpoint's footer
// is read first (not its rows), so a truncated or foreign file never becomes the only way
// back to the versions after it; an unreadable one is an error and nothing is deleted.
//
// Versions are deleted in order, so a cleanup stopped halfway (crash, failed delete)
// leaves a log that has only lost a prefix, which readers handle; running it again
// finishes the job.
func CleanupLog(ctx context.Context, store storage.Store, now time.Time, retention time.Duration) (CleanupResult, error) {
	res := CleanupResult{Cutoff: now.Add(-retention), KeptCheckpoint: -1, EarliestVersion: -1}
	if retention < 0 {
		return res, fmt.Errorf("txlog: clean up log of %s: retention %v is negative; 0 keeps only what the newest checkpoint needs", store.URL(), retention)
	}
	objs, err := store.List(ctx, logDir)
	if err != nil {
		return res, fmt.Errorf("txlog: clean up log of %s: %w", store.URL(), err)
	}
	listing := classifyLog(objs)
	res.EarliestVersion = listing.earliest()

	byVersion := map[int64][]storage.ObjectInfo{}
	var versions []int64
	for _, o := range objs {
		if v, ok := logFileVersion(o.Key); ok {
			if _, seen := byVersion[v]; !seen {
				versions = append(versions, v)
			}
			byVersion[v] = append(byVersion[v], o)
		}
	}
	if len(versions) == 0 {
		return res, nil
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	kept, err := keptCheckpoint(ctx, store, listing, versions[0], res.Cutoff)
	if err != nil || kept < 0 {
		return res, err
	}
	res.KeptCheckpoint = kept

	deleted := map[string]bool{}
	err = deleteBelow(ctx, store, kept, versions, byVersion, &res, deleted)
	if len(deleted) > 0 {
		var left []storage.ObjectInfo
		for _, o := range objs {
			if !deleted[o.Key] {
				left = append(left, o)
			}
		}
		res.EarliestVersion = classifyLog(left).earliest()
	}
	return res, err
}

// deleteBelow deletes the files of versions below kept, oldest first, stopping at the
// first version with a file newer than the cutoff. It records what it deleted in res and
// deleted.
func deleteBelow(ctx context.Context, store storage.Store, kept int64, versions []int64, byVersion map[int64][]storage.ObjectInfo, res *CleanupResult, deleted map[string]bool) error {
	for _, v := range versions {
		if v >= kept {
			return nil
		}
		files := byVersion[v]
		for _, o := range files {
			if o.ModTime.After(res.Cutoff) {
				return nil // keep it and everything after it
			}
		}
		// The commit first: a version whose commit is gone but whose checkpoint is left
		// still rebuilds itself.
		commit := commitKey(v)
		sort.SliceStable(files, func(i, j int) bool { return files[i].Key == commit && files[j].Key != commit })
		checkpoint := false
		for _, o := range files {
			if err := store.Delete(ctx, o.Key); err != nil {
				return fmt.Errorf("txlog: clean up log of %s: %w; versions from %d on are intact, and the next cleanup deletes the rest", store.URL(), err, v)
			}
			deleted[o.Key] = true
			switch kind, _, _, _ := parseLogName(o.Key); kind {
			case "commit":
				res.CommitsDeleted++
			case "checkpoint":
				checkpoint = true
			default:
				res.OtherFilesDeleted++
			}
		}
		if checkpoint {
			res.CheckpointsDeleted++
		}
	}
	return nil
}

// keptCheckpoint returns the checkpoint cleanup keeps: the newest complete one whose files
// and whose version's commit timestamp are all at or before cutoff. It returns -1 when no
// such checkpoint lies above lowest, the oldest version with files: then nothing is older
// than it and there is nothing to delete, which keeps a cleanup with nothing to do at one
// listing and no reads.
func keptCheckpoint(ctx context.Context, store storage.Store, listing *logListing, lowest int64, cutoff time.Time) (int64, error) {
	for i := len(listing.cpVersions) - 1; i >= 0; i-- {
		cp := listing.cpVersions[i]
		if cp <= lowest {
			return -1, nil
		}
		cf := listing.checkpoints[cp]
		if cf.modTime.After(cutoff) {
			continue
		}
		if o, ok := listing.commits[cp]; ok {
			c, err := NewLog(store).readCommit(ctx, cp, o.ModTime)
			if err != nil {
				return -1, fmt.Errorf("txlog: clean up log of %s: cannot date checkpoint %d by its commit: %w; nothing deleted", store.URL(), cp, err)
			}
			if c.Timestamp.After(cutoff) {
				continue
			}
		}
		if err := checkCheckpointFooters(ctx, store, cf.keys); err != nil {
			return -1, fmt.Errorf("txlog: clean up log of %s: checkpoint %d would be kept but cannot be read: %w; nothing deleted (cleanup moves past it once a newer checkpoint is older than delta.logRetentionDuration)", store.URL(), cp, err)
		}
		return cp, nil
	}
	return -1, nil
}

// logFileVersion is the version a file of _delta_log/ belongs to, for every file named
// after one: commits, checkpoints of every shape (incomplete multi-part and V2 UUID-named
// ones included), <v>.crc, and compacted logs <a>.<b>.compacted.json, which belong to their
// last version b because they stand in for every commit up to it. _last_checkpoint,
// _sidecars/ and other names belong to none and are never deleted.
func logFileVersion(key string) (int64, bool) {
	name, ok := strings.CutPrefix(key, logDir)
	if !ok || strings.Contains(name, "/") || len(name) < 21 || name[20] != '.' {
		return 0, false
	}
	v, ok := parseVersion(name[:20])
	if !ok {
		return 0, false
	}
	if rest := name[21:]; len(rest) > 21 && rest[20] == '.' && strings.HasSuffix(rest, ".compacted.json") {
		if end, ok := parseVersion(rest[:20]); ok && end >= v {
			return end, true
		}
	}
	return v, true
}

// parseVersion parses a 20-digit zero-padded version (digits only: no sign).
func parseVersion(s string) (int64, bool) {
	if len(s) != 20 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// cleanupAfterCheckpoint runs log cleanup the way Delta does after every checkpoint: when
// delta.enableExpiredLogCleanup allows it, with delta.logRetentionDuration. A failure is
// logged and otherwise ignored; the checkpoint (and the commit before it) stand, and the
// next checkpoint tries again.
func cleanupAfterCheckpoint(ctx context.Context, store storage.Store, conf map[string]string, now time.Time, logger *slog.Logger) CleanupResult {
	if !ExpiredLogCleanupEnabled(conf) {
		return CleanupResult{KeptCheckpoint: -1, EarliestVersion: -1}
	}
	res, err := CleanupLog(ctx, store, now, LogRetention(conf))
	if err != nil {
		logger.Warn("txlog: log cleanup failed; the checkpoint stands and the next one retries", "table", store.URL(), "err", err)
		return res
	}
	if res.CommitsDeleted+res.CheckpointsDeleted+res.OtherFilesDeleted > 0 {
		logger.Debug("txlog: cleaned up log", "table", store.URL(), "keptCheckpoint", res.KeptCheckpoint,
			"earliestVersion", res.EarliestVersion, "commits", res.CommitsDeleted, "checkpoints", res.CheckpointsDeleted, "other", res.OtherFilesDeleted)
	}
	return res
}
