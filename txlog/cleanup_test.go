package txlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/storage"
)

const day = 24 * time.Hour

// agedTable builds a table of 100 commits after the create, spread evenly over 40 days
// ending now, through a StorageCommitter whose clock is faked, with synchronous
// checkpoints every delta.checkpointInterval (10 unless conf says otherwise). Every fifth
// commit also removes the file added three commits earlier, so versions differ in more
// than their file count. It returns the store and the commit time of each version.
// The files' modification times are the real ones (all "now"); ageFiles backdates them.
func agedTable(t testing.TB, conf map[string]string) (*storage.Local, []time.Time) {
	t.Helper()
	ctx := context.Background()
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	step := 40 * day / n
	start := time.Now().Truncate(time.Millisecond).Add(-40 * day)
	var clock time.Time
	c := NewStorageCommitter()
	c.SyncCheckpoints = true
	c.Now = func() time.Time { return clock }
	log := NewLog(store)
	times := make([]time.Time, n+1)
	for v := int64(0); v <= n; v++ {
		clock = start.Add(time.Duration(v) * step)
		times[v] = clock
		actions := createActions(conf)
		if v > 0 {
			actions = []Action{addFile(fmt.Sprintf("p=x/f%03d.parquet", v), int(v))}
			if v%5 == 0 {
				actions = append(actions, Action{Remove: &Remove{Path: fmt.Sprintf("p=x/f%03d.parquet", v-3), DataChange: true}})
			}
		}
		if got, err := c.Commit(ctx, log, v-1, actions); err != nil || got != v {
			t.Fatalf("commit %d: got %d, %v", v, got, err)
		}
	}
	return store, times
}

// ageFiles gives every file of the log named after a version the modification time it
// would have had if written at that version's commit time plus shift (checkpoints a
// second after their commit, as the committer writes them).
func ageFiles(t testing.TB, store *storage.Local, times []time.Time, shift time.Duration) {
	t.Helper()
	objs, err := store.List(context.Background(), logDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		v, ok := logFileVersion(o.Key)
		if !ok {
			continue
		}
		ts := times[v].Add(shift)
		if !strings.HasSuffix(o.Key, ".json") {
			ts = ts.Add(time.Second)
		}
		setModTime(t, store, o.Key, ts)
	}
}

func setModTime(t testing.TB, store *storage.Local, key string, ts time.Time) {
	t.Helper()
	if err := os.Chtimes(filepath.Join(store.Root(), filepath.FromSlash(key)), ts, ts); err != nil {
		t.Fatal(err)
	}
}

// logKeys lists the names in _delta_log/.
func logKeys(t testing.TB, store storage.Store) []string {
	t.Helper()
	objs, err := store.List(context.Background(), logDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, strings.TrimPrefix(o.Key, logDir))
	}
	return out
}

// TestCleanupLog: 100 commits over 40 days, checkpoints every 10 versions, 30 days of
// retention. The cutoff falls on version 25, so checkpoint 20 is the newest at or before
// it; everything below version 20 goes, and every version from 20 on reads as before.
func TestCleanupLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, times := agedTable(t, nil)
	put := func(key string) {
		if err := store.Put(ctx, logDir+key, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	put("00000000000000000005.crc")
	put("00000000000000000030.crc")
	put("00000000000000000003.00000000000000000008.compacted.json")
	put("00000000000000000015.checkpoint.0000000001.0000000002.parquet") // half a checkpoint
	put("_sidecars/0a1b.parquet")
	ageFiles(t, store, times, 0)
	setModTime(t, store, logDir+"_sidecars/0a1b.parquet", times[0])

	// What every version reads as before cleanup, through a Log, so from the same
	// checkpoints as after it (a checkpoint drops expired tombstones, so a replay of the
	// JSON from version 0 agrees on files only).
	before := NewLog(store)
	want := make([]*Snapshot, len(times))
	for v := range want {
		s, err := before.Snapshot(ctx, int64(v))
		if err != nil {
			t.Fatal(err)
		}
		want[v] = s
	}
	if got := paths(replayJSON(t, store, 100).Files); !slices.Equal(got, paths(want[100].Files)) || len(got) != 80 {
		t.Fatalf("v100 from JSON has files %v, from checkpoints %v", got, paths(want[100].Files))
	}

	now := times[100]
	res, err := CleanupLog(ctx, store, now, 30*day)
	if err != nil {
		t.Fatal(err)
	}
	wantRes := CleanupResult{Cutoff: now.Add(-30 * day), KeptCheckpoint: 20, EarliestVersion: 20, CommitsDeleted: 20, CheckpointsDeleted: 2, OtherFilesDeleted: 2}
	if res != wantRes {
		t.Fatalf("cleanup: %+v\nwant     %+v", res, wantRes)
	}
	if !res.Cutoff.Equal(times[25]) {
		t.Fatalf("cutoff %v, want the time of version 25 (%v)", res.Cutoff, times[25])
	}
	keys := logKeys(t, store)
	for _, k := range keys {
		if v, ok := logFileVersion(logDir + k); ok && v < 20 {
			t.Errorf("%s survived cleanup", k)
		}
	}
	for _, k := range []string{"00000000000000000020.json", "00000000000000000020.checkpoint.parquet", "00000000000000000030.crc", "_sidecars/0a1b.parquet", "_last_checkpoint"} {
		if !slices.Contains(keys, k) {
			t.Errorf("%s was deleted", k)
		}
	}

	// Every version from the kept checkpoint on reads as before, cold and through the Log
	// that cached the latest snapshot before the cleanup.
	cold := NewLog(store)
	if s, err := cold.Snapshot(ctx, -1); err != nil || s.Version != 100 {
		t.Fatalf("cold latest: %v", err)
	}
	for v := int64(20); v <= 100; v++ {
		for name, l := range map[string]*Log{"cold": cold, "cached": before} {
			s, err := l.Snapshot(ctx, v)
			if err != nil {
				t.Fatalf("%s Snapshot(%d): %v", name, v, err)
			}
			sameState(t, fmt.Sprintf("%s v%d", name, v), s, want[v])
		}
	}
	for v := int64(0); v < 20; v++ {
		_, err := cold.Snapshot(ctx, v)
		if !errors.Is(err, ErrVersionNotFound) || !strings.Contains(err.Error(), "available versions are 20 to 100") || !strings.Contains(err.Error(), "delta.logRetentionDuration") {
			t.Fatalf("Snapshot(%d) after cleanup: %v", v, err)
		}
	}

	// Time travel by timestamp: anything from the cutoff on still works.
	for _, tc := range []struct {
		ts   time.Time
		want int64
	}{
		{res.Cutoff, 25},
		{times[20], 20},
		{times[25].Add(-time.Millisecond), 24},
		{times[100].Add(time.Hour), 100},
	} {
		s, err := NewLog(store).SnapshotAt(ctx, tc.ts)
		if err != nil || s.Version != tc.want {
			t.Errorf("SnapshotAt(%v) = %v, %v; want version %d", tc.ts, s, err, tc.want)
		}
	}
	_, err = cold.SnapshotAt(ctx, times[20].Add(-time.Millisecond))
	if !errors.Is(err, ErrBeforeFirstCommit) || !strings.Contains(err.Error(), "version 20") {
		t.Errorf("SnapshotAt before the first remaining commit: %v", err)
	}
	hist, err := cold.History(ctx, 0)
	if err != nil || len(hist) != 81 || hist[0].Version != 100 || hist[80].Version != 20 {
		t.Errorf("History: %d commits, err %v", len(hist), err)
	}

	// Again: nothing is old enough any more, and finding that out costs one listing.
	counting := &countingStore{Store: store}
	res, err = CleanupLog(ctx, counting, now, 30*day)
	if err != nil || res.KeptCheckpoint != -1 || res.EarliestVersion != 20 || res.CommitsDeleted+res.CheckpointsDeleted+res.OtherFilesDeleted != 0 {
		t.Errorf("second cleanup: %+v, %v", res, err)
	}
	if g, l := counting.gets.Load(), counting.lists.Load(); g != 0 || l != 1 {
		t.Errorf("second cleanup did %d gets and %d lists, want 0 and 1", g, l)
	}
}

// TestCleanupLogStopsAtNewerFile: a version below the kept checkpoint whose file is newer
// than the cutoff (modification times need not follow versions) stops the cleanup there,
// so what is deleted stays a prefix of the log.
func TestCleanupLogStopsAtNewerFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, times := agedTable(t, nil)
	ageFiles(t, store, times, 0)
	setModTime(t, store, commitKey(5), times[100])
	res, err := CleanupLog(ctx, store, times[100], 30*day)
	if err != nil {
		t.Fatal(err)
	}
	if res.KeptCheckpoint != 20 || res.CommitsDeleted != 5 || res.CheckpointsDeleted != 0 || res.EarliestVersion != 10 {
		t.Fatalf("cleanup: %+v", res)
	}
	l := NewLog(store)
	if s, err := l.Snapshot(ctx, 10); err != nil || s.Version != 10 {
		t.Errorf("Snapshot(10): %v", err)
	}
	if _, err := l.Snapshot(ctx, 7); !errors.Is(err, ErrVersionNotFound) || !strings.Contains(err.Error(), "10 to 100") {
		t.Errorf("Snapshot(7): %v", err)
	}
}

// TestCleanupLogKeepsEverything: without a checkpoint that is old by both its files and
// its commit, nothing is deleted.
func TestCleanupLogKeepsEverything(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		conf  map[string]string
		shift time.Duration // added to the files' modification times
		age   bool          // false: the files keep their real (current) times
	}{
		{name: "no checkpoint at all", conf: map[string]string{"delta.checkpointInterval": "1000"}, age: true},
		// Checkpoints at 30, 60, 90: the first is 12 days into 40, after the cutoff.
		{name: "checkpoints only after the cutoff", conf: map[string]string{"delta.checkpointInterval": "30"}, age: true},
		// A copy that did not keep modification times: every file looks new.
		{name: "files newer than their commits", age: false},
		// Files 20 days older than their commits (skewed clocks): checkpoint 30 is old
		// by its file, not by its commit.
		{name: "commits newer than their files", conf: map[string]string{"delta.checkpointInterval": "30"}, age: true, shift: -20 * day},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store, times := agedTable(t, tc.conf)
			if tc.age {
				ageFiles(t, store, times, tc.shift)
			}
			keys := logKeys(t, store)
			res, err := CleanupLog(ctx, store, times[100], 30*day)
			if err != nil {
				t.Fatal(err)
			}
			if res.KeptCheckpoint != -1 || res.EarliestVersion != 0 || res.CommitsDeleted+res.CheckpointsDeleted+res.OtherFilesDeleted != 0 {
				t.Errorf("cleanup: %+v", res)
			}
			if after := logKeys(t, store); !slices.Equal(after, keys) {
				t.Errorf("log changed:\nbefore %v\nafter  %v", keys, after)
			}
		})
	}
}

// TestCleanupAfterCheckpoint: the committer cleans up after each checkpoint, by the
// table's properties, in the background as well as synchronously. One commit a day for
// 40 days; the files themselves are all written at the start, so the commit times decide.
func TestCleanupAfterCheckpoint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		conf       map[string]string
		background bool
		earliest   int64 // after version 40
	}{
		{name: "default 30 days", earliest: 10},
		{name: "default 30 days in the background", background: true, earliest: 10},
		{name: "5 days", conf: map[string]string{"delta.logRetentionDuration": "interval 5 days"}, earliest: 30},
		{name: "disabled", conf: map[string]string{"delta.enableExpiredLogCleanup": "false"}, earliest: 0},
		{name: "disabled, short retention", conf: map[string]string{"delta.enableExpiredLogCleanup": "False", "delta.logRetentionDuration": "interval 1 day"}, earliest: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store, err := storage.NewLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			var days atomic.Int64
			var logged bytes.Buffer
			c := NewStorageCommitter()
			c.Now = func() time.Time { return start.Add(time.Duration(days.Load()) * day) }
			c.SyncCheckpoints = !tc.background
			c.Logger = slog.New(slog.NewTextHandler(&logged, nil))
			log := NewLog(store)
			for v := int64(0); v <= 40; v++ {
				days.Store(v)
				actions := createActions(tc.conf)
				if v > 0 {
					actions = []Action{addFile(fmt.Sprintf("f%02d.parquet", v), 1)}
				}
				if _, err := c.Commit(ctx, log, v-1, actions); err != nil {
					t.Fatal(err)
				}
				c.Wait()
			}
			if logged.Len() > 0 {
				t.Errorf("warnings: %s", logged.String())
			}
			listing, err := listLog(ctx, store)
			if err != nil {
				t.Fatal(err)
			}
			if e := listing.earliest(); e != tc.earliest || listing.versions[0] != tc.earliest {
				t.Errorf("earliest version %d, oldest commit %d; want %d", e, listing.versions[0], tc.earliest)
			}
			want := []int64{10, 20, 30, 40}
			if tc.earliest > 0 {
				want = want[tc.earliest/10-1:] // cleanup keeps the checkpoint at the earliest version
			}
			if !slices.Equal(listing.cpVersions, want) {
				t.Errorf("checkpoints %v, want %v", listing.cpVersions, want)
			}
			if s, err := NewLog(store).Snapshot(ctx, -1); err != nil || s.Version != 40 || len(s.Files) != 40 {
				t.Errorf("reopen: %v", err)
			}
		})
	}
}

// TestLogCheckpoint: Log.Checkpoint checkpoints the latest version on demand, a cold Log
// opens from it without listing, and it cleans up by the table's properties.
func TestLogCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// No automatic checkpoints; a retention of zero lets the explicit one's cleanup drop
	// every version before it.
	store, c := newTable(t, map[string]string{"delta.checkpointInterval": "1000", "delta.logRetentionDuration": "interval 0 days"})
	v := int64(0)
	for i := 1; i <= 5; i++ {
		acts := []Action{addFile(fmt.Sprintf("p=x/f%d.parquet", i), i)}
		if i == 4 {
			acts = append(acts, removeFile("p=x/f2.parquet"))
		}
		v = mustCommit(t, c, store, v, acts...)
	}
	want := replayJSON(t, store, 5)
	l := NewLog(store)
	// "now" a minute ahead: the checkpoint file written now must count as older than
	// the cutoff, whatever the filesystem clock's granularity.
	now := time.Now().Add(time.Minute)
	got, err := l.Checkpoint(ctx, now)
	if err != nil || got != 5 {
		t.Fatalf("Checkpoint: %d, %v", got, err)
	}
	b, err := store.Get(ctx, lastCheckpointKey)
	var lc lastCheckpoint
	if err != nil || json.Unmarshal(b, &lc) != nil || lc.Version != 5 {
		t.Fatalf("_last_checkpoint = %s, %v", b, err)
	}
	if keys := logKeys(t, store); !slices.Equal(keys, []string{"00000000000000000005.checkpoint.parquet", "00000000000000000005.json", "_last_checkpoint"}) {
		t.Errorf("log after checkpoint and cleanup: %v", keys)
	}

	counting := &countingStore{Store: store}
	s, err := NewLog(counting).Snapshot(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, "cold open from the explicit checkpoint", s, want)
	// _last_checkpoint, commit 5 (its timestamp), the probe for 6; the checkpoint is Opened.
	if g, li := counting.gets.Load(), counting.lists.Load(); g != 3 || li != 0 {
		t.Errorf("cold open did %d gets and %d lists, want 3 and 0", g, li)
	}

	// Asked again at the same version, it rewrites the checkpoint; after a commit it
	// checkpoints the new version.
	if got, err := l.Checkpoint(ctx, now); err != nil || got != 5 {
		t.Errorf("second Checkpoint: %d, %v", got, err)
	}
	mustCommit(t, c, store, 5, addFile("p=x/f6.parquet", 6))
	if got, err := l.Checkpoint(ctx, now); err != nil || got != 6 {
		t.Errorf("Checkpoint after a commit: %d, %v", got, err)
	}

	// A table we cannot write gets no checkpoint from us; no table is no table.
	ro := storage.NewMem("writer4")
	v0, _ := EncodeActions([]Action{{Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 4}}, createActions(nil)[1]})
	ro.Put(ctx, commitKey(0), v0)
	if _, err := NewLog(ro).Checkpoint(ctx, now); !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), "writer version 4") {
		t.Errorf("Checkpoint of a writer-4 table: %v", err)
	}
	if keys := logKeys(t, ro); len(keys) != 1 {
		t.Errorf("writer-4 table got files: %v", keys)
	}
	if _, err := NewLog(storage.NewMem("none")).Checkpoint(ctx, now); !errors.Is(err, ErrNoTable) {
		t.Errorf("Checkpoint of no table: %v", err)
	}
}

// TestCleanupLogRefusesUnreadableCheckpoint: the checkpoint that would become the only
// way back to the versions after it must at least be a Parquet file.
func TestCleanupLogRefusesUnreadableCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, times := agedTable(t, nil)
	key := logDir + "00000000000000000020.checkpoint.parquet"
	if err := store.Put(ctx, key, []byte("PAR1 truncated")); err != nil {
		t.Fatal(err)
	}
	ageFiles(t, store, times, 0)
	keys := logKeys(t, store)
	_, err := CleanupLog(ctx, store, times[100], 30*day)
	if !errors.Is(err, ErrCorruptLog) || !strings.Contains(err.Error(), "checkpoint 20") || !strings.Contains(err.Error(), "nothing deleted") {
		t.Errorf("cleanup with a broken checkpoint: %v", err)
	}
	if after := logKeys(t, store); !slices.Equal(after, keys) {
		t.Errorf("log changed: %v", after)
	}
	if _, err := CleanupLog(ctx, store, times[100], -time.Hour); err == nil {
		t.Error("negative retention accepted")
	}
}

func TestLogRetentionProperties(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{"", 30 * day},
		{"interval 30 days", 30 * day},
		{"INTERVAL 1 WEEK", 7 * day},
		{"interval 1 day 12 hours", 36 * time.Hour},
		{"interval 0 days", 0},
		{"interval 1 month", 30 * day}, // months have no fixed length; Delta refuses them
		{"interval -1 days", 30 * day},
		{"a week", 30 * day},
	} {
		if got := LogRetention(map[string]string{"delta.logRetentionDuration": tc.value}); got != tc.want {
			t.Errorf("LogRetention(%q) = %v, want %v", tc.value, got, tc.want)
		}
	}
	for value, want := range map[string]bool{"": true, "true": true, "false": false, "FALSE": false, " false ": false, "no": true} {
		if got := ExpiredLogCleanupEnabled(map[string]string{"delta.enableExpiredLogCleanup": value}); got != want {
			t.Errorf("ExpiredLogCleanupEnabled(%q) = %v", value, got)
		}
	}
}

// TestListingEarliest: the start of the available range, for logs cut by cleanup and for
// logs with holes.
func TestListingEarliest(t *testing.T) {
	t.Parallel()
	commits := func(from, to int64) []string {
		var out []string
		for v := from; v <= to; v++ {
			out = append(out, fmt.Sprintf("%020d.json", v))
		}
		return out
	}
	cps := func(vs ...int64) []string {
		var out []string
		for _, v := range vs {
			out = append(out, fmt.Sprintf("%020d.checkpoint.parquet", v))
		}
		return out
	}
	cases := []struct {
		name  string
		files []string
		want  int64
	}{
		{"empty", nil, -1},
		{"whole log", commits(0, 30), 0},
		{"whole log with checkpoints", append(commits(0, 30), cps(10, 20)...), 0},
		{"cut at a checkpoint", append(commits(20, 30), cps(20, 30)...), 20},
		{"cut below a checkpoint", append(commits(5, 30), cps(10, 20)...), 10},
		{"checkpoint without its commit", append(commits(21, 30), cps(20)...), 20},
		{"stranded checkpoint below a gap", append(commits(21, 30), cps(10, 20)...), 20},
		{"hole after version 0", slices.Concat(commits(0, 4), commits(10, 30), cps(9, 20)), 9},
		{"only checkpoints", cps(10, 20), 20},
	}
	for _, tc := range cases {
		var objs []storage.ObjectInfo
		for _, f := range tc.files {
			objs = append(objs, storage.ObjectInfo{Key: logDir + f})
		}
		if got := classifyLog(objs).earliest(); got != tc.want {
			t.Errorf("%s: earliest %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestLogFileVersion(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]int64{
		"_delta_log/00000000000000000007.json":                                     7,
		"_delta_log/00000000000000000007.crc":                                      7,
		"_delta_log/00000000000000000007.checkpoint.parquet":                       7,
		"_delta_log/00000000000000000007.checkpoint.0000000001.0000000003.parquet": 7,
		"_delta_log/00000000000000000007.checkpoint.80a083e8-7026.json":            7,
		"_delta_log/00000000000000000003.00000000000000000007.compacted.json":      7,
		"_delta_log/_last_checkpoint":                                              -1,
		"_delta_log/_sidecars/00000000000000000007.parquet":                        -1,
		"_delta_log/+0000000000000000007.json":                                     -1,
		"_delta_log/.00000000000000000007.json.tmp":                                -1,
		"00000000000000000007.json":                                                -1,
	} {
		got, ok := logFileVersion(key)
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("logFileVersion(%s) = %d, want %d", key, got, want)
		}
	}
}

// BenchmarkColdOpen measures opening a table cold (a new Log, latest snapshot) after
// 1,000 commits of one small add each: from JSON alone (listing, then a thousand reads),
// and from the checkpoint at version 1,000 (pointer, checkpoint, one probe).
func BenchmarkColdOpen(b *testing.B) {
	for _, bc := range []struct {
		name     string
		interval string
	}{
		{"json", "1000000"},
		{"checkpointed", "10"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			store, err := storage.NewLocal(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			c := NewStorageCommitter()
			c.SyncCheckpoints = true
			log := NewLog(store)
			if _, err := c.Commit(ctx, log, -1, createActions(map[string]string{"delta.checkpointInterval": bc.interval})); err != nil {
				b.Fatal(err)
			}
			for v := int64(0); v < 1000; v++ {
				if _, err := c.Commit(ctx, log, v, []Action{addFile(fmt.Sprintf("p=x/f%04d.parquet", v), 1)}); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if s, err := NewLog(store).Snapshot(ctx, -1); err != nil || s.Version != 1000 || len(s.Files) != 1000 {
					b.Fatalf("cold open: %v", err)
				}
			}
		})
	}
}
