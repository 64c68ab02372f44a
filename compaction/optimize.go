// Package compaction keeps Delta tables fast and small without anyone running anything by
// hand: bin-packing of small files (OPTIMIZE), Z-ordering, automatic compaction after
// commits, and VACUUM of files no version inside the retention window references. Every
// rewrite commits with dataChange=false through the table's committer, so it never changes
// what a query returns and never conflicts with a concurrent append.
package compaction

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// Table is one Delta table as maintenance sees it.
type Table struct {
	Name      string        // "db.t", for messages and job reports
	Store     storage.Store // rooted at the table folder
	Log       *txlog.Log
	Committer txlog.Committer
}

// ErrBadArgument marks errors in what the caller asked for (an unknown column, a negative
// retention): nothing was changed, and the message says what to fix.
var ErrBadArgument = errors.New("compaction: bad argument")

func badArg(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadArgument, fmt.Sprintf(format, args...))
}

// tierSpread: tiered compaction merges files up to this many times the median small file.
// tieredAbove: below target/tieredAbove bytes of small files, rewriting them all costs
// little, and auto-compaction merges them into one file instead.
const (
	tierSpread  = 4
	tieredAbove = 16
)

// DefaultTargetSize is the file size OPTIMIZE aims for when the table does not set
// delta.targetFileSize.
const DefaultTargetSize = 128 << 20

// Options tunes OPTIMIZE and ZORDER. Zero values take the defaults.
type Options struct {
	// TargetSize is the size of the files written; default the table's
	// delta.targetFileSize, else DefaultTargetSize.
	TargetSize int64
	// Where selects partitions. It is called once with the values of every partition that
	// has files and returns, for each, whether it is included. nil selects all.
	Where func(ctx context.Context, partitions []map[string]string) ([]bool, error)
	// Predicate is the text of the partition predicate, recorded in the commit.
	Predicate string
	// SmallBelow: only files smaller than this are compacted; default TargetSize
	// (auto-compaction passes half the target).
	SmallBelow int64
	// MinFiles: a partition is compacted only if it has at least this many small files;
	// default 2 (auto-compaction passes its trigger).
	MinFiles int
	// Auto marks the commit as auto-compaction in its commitInfo.
	Auto bool
	// Tiered merges only files of similar size (up to tierSpread times the median small
	// file), as auto-compaction does to bound how often a row is rewritten.
	Tiered bool
	// Attempts is how many times a commit that conflicts (a concurrent DELETE or UPDATE
	// removed a file being compacted) is re-planned on the new version; default 3.
	Attempts int
	// Job receives progress; may be nil.
	Job *Job
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o *Options) defaults(snap *txlog.Snapshot) {
	if o.TargetSize <= 0 {
		o.TargetSize = table.OptionsFor(snap.Metadata.Configuration).TargetFileSize
		if o.TargetSize <= 0 {
			o.TargetSize = DefaultTargetSize
		}
	}
	if o.SmallBelow <= 0 {
		o.SmallBelow = o.TargetSize
	}
	if o.MinFiles < 2 {
		o.MinFiles = 2
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Result is what an OPTIMIZE or ZORDER did.
type Result struct {
	// Version is the version committed, or -1 when there was nothing to do.
	Version             int64
	FilesRemoved        int64
	FilesAdded          int64
	BytesRemoved        int64
	BytesAdded          int64
	PartitionsOptimized int64
	// MinSize, P50Size and MaxSize describe the live files of the selected partitions
	// afterwards (0 when there are none).
	MinSize, P50Size, MaxSize int64
}

// partition is one partition's live files.
type partition struct {
	key    string // the partition values, encoded; "" for an unpartitioned table
	values map[string]string
	files  []*txlog.Add
}

// partitionsOf groups files (those keep accepts; nil keeps all) by partition values, in the
// order partitions are first seen.
func partitionsOf(snap *txlog.Snapshot, keep func(*txlog.Add) bool) []*partition {
	cols := snap.Metadata.PartitionColumns
	if len(cols) == 0 { // one partition; auto-compaction asks after every commit
		p := &partition{values: map[string]string{}}
		for _, f := range snap.Files {
			if keep == nil || keep(f) {
				p.files = append(p.files, f)
			}
		}
		if len(p.files) == 0 {
			return nil
		}
		return []*partition{p}
	}
	byKey := map[string]*partition{}
	var out []*partition
	var b strings.Builder
	for _, f := range snap.Files {
		if keep != nil && !keep(f) {
			continue
		}
		b.Reset()
		for _, c := range cols {
			v, ok := table.PartitionValue(f.PartitionValues, c)
			if !ok || v == "" {
				b.WriteString("\x01") // null
			} else {
				b.WriteString(strconv.Quote(v))
			}
			b.WriteByte(0)
		}
		k := b.String()
		p := byKey[k]
		if p == nil {
			p = &partition{key: k, values: f.PartitionValues}
			byKey[k] = p
			out = append(out, p)
		}
		p.files = append(p.files, f)
	}
	return out
}

// selectPartitions applies o.Where.
func selectPartitions(ctx context.Context, parts []*partition, o *Options) ([]*partition, error) {
	if o.Where == nil {
		return parts, nil
	}
	values := make([]map[string]string, len(parts))
	for i, p := range parts {
		values[i] = p.values
	}
	keep, err := o.Where(ctx, values)
	if err != nil {
		return nil, err
	}
	var out []*partition
	for i, p := range parts {
		if keep[i] {
			out = append(out, p)
		}
	}
	return out, nil
}

// bins plans the compaction of one partition: its small files (deletion vectors are left
// alone) in bins of at most target bytes, smallest files first. Bins of one file are
// dropped: rewriting a file alone gains nothing.
func bins(files []*txlog.Add, smallBelow, target int64, tiered bool) [][]*txlog.Add {
	var small []*txlog.Add
	for _, f := range files {
		if f.Size < smallBelow && f.DeletionVector == nil {
			small = append(small, f)
		}
	}
	sort.SliceStable(small, func(i, j int) bool { return small[i].Size < small[j].Size })
	var total int64
	for _, f := range small {
		total += f.Size
	}
	if tiered && len(small) > 0 && total > target/tieredAbove {
		// Merge files of similar size only: those up to tierSpread times the median small
		// file, measured in rows (bytes hardly tell a 1-row file from a 10-row one: the
		// Parquet footer dominates). Without this, every auto-compaction of a stream of tiny
		// inserts rewrote the previous compaction's output too, so each row was rewritten
		// once per compaction until its file reached half the target (22 times for 400
		// single-row commits with a trigger of 10); with it, a row is rewritten once per
		// tier, a logarithmic number of times.
		w := make(map[*txlog.Add]int64, len(small))
		for _, f := range small {
			w[f] = f.Size
			if st, err := txlog.ParseStats(f.Stats); err == nil && st != nil && st.NumRecords > 0 {
				w[f] = st.NumRecords
			}
		}
		sort.SliceStable(small, func(i, j int) bool { return w[small[i]] < w[small[j]] })
		limit := tierSpread * w[small[len(small)/2]]
		n := sort.Search(len(small), func(i int) bool { return w[small[i]] > limit })
		small = small[:n]
	}
	var out [][]*txlog.Add
	var cur []*txlog.Add
	var size int64
	for _, f := range small {
		if len(cur) > 0 && size+f.Size > target {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, f)
		size += f.Size
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return slices.DeleteFunc(out, func(b []*txlog.Add) bool { return len(b) < 2 })
}

// Optimize bin-packs the small files of the table (or of the partitions o.Where selects)
// into files of about the target size, and commits the swap as one version with
// dataChange=false. A partition is compacted when it has at least o.MinFiles small files.
func Optimize(ctx context.Context, t Table, o Options) (Result, error) {
	return run(ctx, t, &o, "OPTIMIZE", nil, func(parts []*partition) [][]*txlog.Add {
		var work [][]*txlog.Add
		for _, p := range parts {
			small := 0
			for _, f := range p.files {
				if f.Size < o.SmallBelow && f.DeletionVector == nil {
					small++
				}
			}
			if small >= o.MinFiles {
				work = append(work, bins(p.files, o.SmallBelow, o.TargetSize, o.Tiered)...)
			}
		}
		return work
	}, compactGroup)
}

// rewriting holds a one-slot semaphore per table (by its Log) that rewrites take; a
// waiting OPTIMIZE can still be cancelled. (One small entry per table ever rewritten stays
// for the life of the process.)
var rewriting sync.Map

func rewriteLock(l *txlog.Log) chan struct{} {
	sem, _ := rewriting.LoadOrStore(l, make(chan struct{}, 1))
	return sem.(chan struct{})
}

// rewriteFunc rewrites one group of files (all in one partition) with writer w.
type rewriteFunc func(ctx context.Context, t Table, snap *txlog.Snapshot, group []*txlog.Add, w *table.Writer, o *Options, zcols []string) error

// run is the plan → rewrite → commit loop shared by OPTIMIZE and ZORDER. A commit that
// conflicts is re-planned on the new version, up to o.Attempts times.
func run(ctx context.Context, t Table, o *Options, op string, zcols []string, plan func([]*partition) [][]*txlog.Add, rewrite rewriteFunc) (Result, error) {
	// One rewrite per table at a time in this process: two would remove the same files and
	// one would lose all its work. A user's OPTIMIZE waits for a running auto-compaction
	// (they are short); auto-compaction skips a table being rewritten (a later commit asks
	// again).
	sem := rewriteLock(t.Log)
	if o.Auto {
		select {
		case sem <- struct{}{}:
		default:
			return Result{Version: -1}, nil
		}
	} else {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
	defer func() { <-sem }()
	var lastErr error
	var first map[string]bool // the files of the first attempt's snapshot
	for attempt := 0; ; attempt++ {
		snap, err := t.Log.Snapshot(ctx, -1)
		if err != nil {
			return Result{}, err
		}
		if err := snap.Protocol.CheckWrite(); err != nil {
			return Result{}, err
		}
		if attempt == 0 {
			o.defaults(snap)
			first = make(map[string]bool, len(snap.Files))
			for _, f := range snap.Files {
				first[f.Path] = true
			}
		}
		// A retry leaves out files written since the first attempt: a file that a user's
		// UPDATE keeps rewriting would otherwise make every attempt conflict. They are
		// compacted by a later run, once they cool down.
		parts, err := selectPartitions(ctx, partitionsOf(snap, func(f *txlog.Add) bool { return first[f.Path] }), o)
		if err != nil {
			return Result{}, err
		}
		groups := plan(parts)
		res, err := rewriteAndCommit(ctx, t, snap, o, op, zcols, groups, rewrite)
		if err == nil {
			if res.Version >= 0 {
				res.PartitionsOptimized = countPartitions(groups)
			}
			sizesAfter(ctx, t, o, parts, &res)
			return res, nil
		}
		if !errors.Is(err, txlog.ErrConflict) || attempt+1 >= o.Attempts {
			if lastErr != nil && errors.Is(err, txlog.ErrConflict) {
				err = fmt.Errorf("%w (gave up after %d attempts)", err, attempt+1)
			}
			return Result{}, err
		}
		lastErr = err
		if o.Job != nil {
			o.Job.FilesDone.Store(0)
			o.Job.BytesDone.Store(0)
		}
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
		}
	}
}

// countPartitions counts the distinct partitions among groups (each group is in one).
func countPartitions(groups [][]*txlog.Add) int64 {
	seen := map[string]bool{}
	for _, g := range groups {
		dir := ""
		if i := strings.LastIndexByte(g[0].Path, '/'); i >= 0 {
			dir = g[0].Path[:i]
		}
		seen[dir] = true
	}
	return int64(len(seen))
}

// sizesAfter fills the file-size figures from the latest snapshot's files in the partitions
// the run selected (selected once: a predicate is not evaluated again).
func sizesAfter(ctx context.Context, t Table, o *Options, selected []*partition, res *Result) {
	snap, err := t.Log.Snapshot(ctx, -1)
	if err != nil {
		return
	}
	keys := make(map[string]bool, len(selected))
	for _, p := range selected {
		keys[p.key] = true
	}
	var sizes []int64
	for _, p := range partitionsOf(snap, nil) {
		if o.Where != nil && !keys[p.key] {
			continue
		}
		for _, f := range p.files {
			sizes = append(sizes, f.Size)
		}
	}
	if len(sizes) == 0 {
		return
	}
	slices.Sort(sizes)
	res.MinSize, res.P50Size, res.MaxSize = sizes[0], sizes[len(sizes)/2], sizes[len(sizes)-1]
}

// rewriteAndCommit writes the new files of every group and commits them with the removes
// of the old ones. On failure, the files it wrote are deleted.
func rewriteAndCommit(ctx context.Context, t Table, snap *txlog.Snapshot, o *Options, op string, zcols []string, groups [][]*txlog.Add, rewrite rewriteFunc) (Result, error) {
	res := Result{Version: -1}
	if len(groups) == 0 {
		return res, nil
	}
	var total int64
	var nfiles int64
	for _, g := range groups {
		for _, f := range g {
			total += f.Size
			nfiles++
		}
	}
	o.Job.Plan(nfiles, total)

	wopts := table.OptionsFor(snap.Metadata.Configuration)
	wopts.TargetFileSize = o.TargetSize
	wopts.Now = o.Now
	var adds []*txlog.Add
	cleanup := func() {
		for _, a := range adds {
			_ = t.Store.Delete(context.WithoutCancel(ctx), txlog.DecodePath(a.Path))
		}
	}
	for _, g := range groups {
		w, err := table.NewWriter(t.Store, snap.Schema, snap.Metadata.PartitionColumns, wopts)
		if err != nil {
			cleanup()
			return res, err
		}
		if err := rewrite(ctx, t, snap, g, w, o, zcols); err != nil {
			_ = w.Abort(context.WithoutCancel(ctx))
			cleanup()
			return res, err
		}
		out, err := w.Close(ctx)
		if err != nil {
			_ = w.Abort(context.WithoutCancel(ctx))
			cleanup()
			return res, err
		}
		adds = append(adds, out...)
	}

	now := o.Now().UnixMilli()
	actions := []txlog.Action{{CommitInfo: commitInfo(op, o, zcols, now)}}
	for _, g := range groups {
		for _, f := range g {
			size := f.Size
			ext := true
			actions = append(actions, txlog.Action{Remove: &txlog.Remove{Path: f.Path, DeletionTimestamp: &now, DataChange: false,
				ExtendedFileMetadata: &ext, PartitionValues: f.PartitionValues, Size: &size, Stats: f.Stats, Tags: f.Tags}})
			res.FilesRemoved++
			res.BytesRemoved += f.Size
		}
	}
	for _, a := range adds {
		a.DataChange = false
		actions = append(actions, txlog.Action{Add: a})
		res.FilesAdded++
		res.BytesAdded += a.Size
	}
	info := actions[0].CommitInfo
	info.OperationMetrics = map[string]string{
		"numRemovedFiles": strconv.FormatInt(res.FilesRemoved, 10),
		"numAddedFiles":   strconv.FormatInt(res.FilesAdded, 10),
		"numRemovedBytes": strconv.FormatInt(res.BytesRemoved, 10),
		"numAddedBytes":   strconv.FormatInt(res.BytesAdded, 10),
	}
	v, err := t.Committer.Commit(ctx, t.Log, snap.Version, actions)
	if err != nil {
		if !errors.Is(err, storage.ErrOutcomeUnknown) {
			cleanup()
		}
		return Result{}, err
	}
	res.Version = v
	return res, nil
}

func commitInfo(op string, o *Options, zcols []string, now int64) *txlog.CommitInfo {
	blind := false
	z := "[]"
	if len(zcols) > 0 {
		z = `["` + strings.Join(zcols, `","`) + `"]`
	}
	pred := "[]"
	if o.Predicate != "" {
		pred = strconv.Quote(o.Predicate)
		pred = "[" + pred + "]"
	}
	params := map[string]any{"predicate": pred, "zOrderBy": z}
	if o.Auto {
		params["auto"] = true
	}
	return &txlog.CommitInfo{Timestamp: now, Operation: op, OperationParameters: params, IsBlindAppend: &blind}
}

// compactGroup copies the rows of a group of files, in file order, into w.
func compactGroup(ctx context.Context, t Table, snap *txlog.Snapshot, group []*txlog.Add, w *table.Writer, o *Options, _ []string) error {
	return eachRecord(ctx, t, snap, group, o, func(rec arrow.RecordBatch) error {
		defer rec.Release()
		return w.Write(ctx, rec)
	})
}

// eachRecord scans the files of group (full table schema) and hands each record to fn,
// which owns it; files are counted as done in o.Job as the scan moves past them.
func eachRecord(ctx context.Context, t Table, snap *txlog.Snapshot, group []*txlog.Add, o *Options, fn func(arrow.RecordBatch) error) error {
	sc, err := table.Scan(ctx, t.Store, snap.Schema, snap.Metadata.PartitionColumns, group, table.ScanOptions{BatchRows: 64 << 10})
	if err != nil {
		return err
	}
	defer sc.Close()
	var cur *txlog.Add
	for {
		rec, f, err := sc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if f != cur {
			if cur != nil {
				o.Job.Done(1, cur.Size)
			}
			cur = f
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if cur != nil {
		o.Job.Done(1, cur.Size)
	}
	return nil
}
