package compaction

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// DefaultRetention is VACUUM's default retention window, Delta's one week.
const DefaultRetention = 7 * 24 * time.Hour

// VacuumOptions tunes Vacuum.
type VacuumOptions struct {
	// Retention: files that no version newer than now-Retention references are deleted.
	// Negative is refused; the SQL layer refuses less than DefaultRetention unless the
	// session turned its check off.
	Retention time.Duration
	// DryRun only counts what would be deleted.
	DryRun bool
	// Full also deletes files in the table folder that the log never referenced (or whose
	// tombstones have expired from the log) and temp files of interrupted writes, when
	// they are older than the retention.
	Full bool
	Job  *Job
	Now  func() time.Time
}

// VacuumResult is what a VACUUM deleted (or, for a dry run, would delete).
type VacuumResult struct {
	FilesDeleted int64
	BytesDeleted int64
	// Version is the VACUUM commit recorded in the log, or -1 (dry run).
	Version int64
}

// Vacuum deletes data files that no version inside the retention window references, so
// time travel to any version newer than now-Retention still finds every file it needs.
//
// A file is kept when it is live, or when its tombstone is younger than the cutoff (it was
// live at some version inside the window). Without Full only expired tombstones are
// deleted: the log says these files were ours. Full also deletes unreferenced files older
// than the cutoff found by listing the folder; hidden names (starting with '_' or '.',
// other than partition directories) are never touched, _delta_log/ included.
func Vacuum(ctx context.Context, t Table, o VacuumOptions) (VacuumResult, error) {
	res := VacuumResult{Version: -1}
	if o.Retention < 0 {
		return res, badArg("VACUUM retention must not be negative, got %s", o.Retention)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	now := o.Now()
	cutoff := now.Add(-o.Retention).UnixMilli()
	snap, err := t.Log.Snapshot(ctx, -1)
	if err != nil {
		return res, err
	}
	if err := snap.Protocol.CheckWrite(); err != nil {
		return res, err
	}
	if horizon := txlog.DeletedFileRetention(snap.Metadata.Configuration); o.Full && o.Retention > horizon {
		// Checkpoints keep tombstones only this long: a file removed earlier than that but
		// inside the window would look unknown to the log, and FULL would delete a file a
		// version inside the window still reads.
		return res, badArg("VACUUM FULL with a retention of %v hours is longer than the table's delta.deletedFileRetentionDuration (%v hours), beyond which the log no longer knows which files were removed; raise that property first or use a shorter retention",
			o.Retention.Hours(), horizon.Hours())
	}
	keep := map[string]bool{}
	expired := map[string]bool{}
	root := t.Store.URL()
	var pathErr error
	noteSnapshot := func(s *txlog.Snapshot) {
		for _, f := range s.Files {
			k, err := table.FileKey(f.Path, root)
			if err != nil {
				if pathErr == nil && !strings.Contains(f.Path, "://") {
					pathErr = err // a name we cannot resolve might be any listed file
				}
				continue // outside the table folder: never listed, never deleted
			}
			keep[k] = true
		}
		for _, r := range s.Tombstones {
			k, err := table.FileKey(r.Path, root)
			if err != nil {
				if pathErr == nil && !strings.Contains(r.Path, "://") {
					pathErr = err
				}
				continue
			}
			if r.DeletionTimestamp == nil || *r.DeletionTimestamp >= cutoff {
				keep[k] = true
			} else {
				expired[k] = true
			}
		}
	}
	noteSnapshot(snap)
	if pathErr != nil {
		return res, fmt.Errorf("compaction: VACUUM %s: %w", t.Name, pathErr)
	}

	objects, err := t.Store.List(ctx, "")
	if err != nil {
		return res, err
	}
	var victims []storage.ObjectInfo
	var total int64
	for _, obj := range objects {
		if hidden(obj.Key) || keep[obj.Key] {
			continue
		}
		if expired[obj.Key] || o.Full && obj.ModTime.UnixMilli() < cutoff {
			victims = append(victims, obj)
			total += obj.Size
		}
	}
	// A commit that landed while we listed may have brought a file back (RESTORE adds an
	// old file again): look at the newest version once more before deleting anything.
	if latest, err := t.Log.Snapshot(ctx, -1); err == nil && latest.Version != snap.Version {
		noteSnapshot(latest)
		kept := victims[:0]
		total = 0
		for _, v := range victims {
			if !keep[v.Key] {
				kept = append(kept, v)
				total += v.Size
			}
		}
		victims = kept
	} else if err != nil {
		return res, err
	}
	o.Job.Plan(int64(len(victims)), total)

	for _, v := range victims {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if !o.DryRun {
			if err := t.Store.Delete(ctx, v.Key); err != nil && !errors.Is(err, storage.ErrNotExist) {
				return res, err
			}
		}
		res.FilesDeleted++
		res.BytesDeleted += v.Size
		o.Job.Done(1, v.Size)
	}
	if o.Full {
		if tc, ok := t.Store.(storage.TempCleaner); ok {
			n, b, err := tc.RemoveStaleTemps(ctx, "", time.UnixMilli(cutoff), o.DryRun)
			if err != nil {
				return res, err
			}
			res.FilesDeleted += int64(n)
			res.BytesDeleted += b
		}
	}
	if o.DryRun {
		return res, nil
	}
	// Record the VACUUM in the log, as Delta does, so lake_history shows it. The commit
	// carries no file actions and conflicts with nothing (isBlindAppend is left to the
	// committer, which sees that it reads nothing).
	mode := "LITE"
	if o.Full {
		mode = "FULL"
	}
	info := &txlog.CommitInfo{Timestamp: now.UnixMilli(), Operation: "VACUUM END",
		OperationParameters: map[string]any{"status": "COMPLETED", "retentionHours": o.Retention.Hours(), "mode": mode},
		OperationMetrics: map[string]string{
			"numDeletedFiles": strconv.FormatInt(res.FilesDeleted, 10),
			"numDeletedBytes": strconv.FormatInt(res.BytesDeleted, 10),
		}}
	latest, err := t.Log.LatestVersion(ctx)
	if err != nil {
		return res, err
	}
	v, err := t.Committer.Commit(ctx, t.Log, latest, []txlog.Action{{CommitInfo: info}})
	if err != nil {
		return res, err
	}
	res.Version = v
	return res, nil
}

// hidden reports names VACUUM never deletes: the log, and any path segment starting with
// '_' or '.' that is not a partition directory (name=value), as Delta's VACUUM rules have it.
func hidden(key string) bool {
	for seg := range strings.SplitSeq(key, "/") {
		if (strings.HasPrefix(seg, "_") || strings.HasPrefix(seg, ".")) && !strings.Contains(seg, "=") {
			return true
		}
	}
	return false
}
