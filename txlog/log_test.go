package txlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/storage"
)

// countingStore counts reads, to check that a refresh reads only new commit files.
type countingStore struct {
	storage.Store
	gets, lists atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) List(ctx context.Context, prefix string) ([]storage.ObjectInfo, error) {
	c.lists.Add(1)
	return c.Store.List(ctx, prefix)
}

func TestNoTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := NewLog(storage.NewMem("empty"))
	if _, err := l.Snapshot(ctx, -1); !errors.Is(err, ErrNoTable) {
		t.Errorf("Snapshot: %v", err)
	}
	if _, err := l.LatestVersion(ctx); !errors.Is(err, ErrNoTable) {
		t.Errorf("LatestVersion: %v", err)
	}
	if _, err := l.History(ctx, 0); !errors.Is(err, ErrNoTable) {
		t.Errorf("History: %v", err)
	}
	if _, err := l.SnapshotAt(ctx, time.Now()); !errors.Is(err, ErrNoTable) {
		t.Errorf("SnapshotAt: %v", err)
	}
}

func TestIncrementalRefresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inner, c := newTable(t, nil)
	store := &countingStore{Store: inner}
	l := NewLog(store)
	if _, err := l.Snapshot(ctx, -1); err != nil {
		t.Fatal(err)
	}
	v := int64(0)
	for i := range 3 {
		v = mustCommit(t, c, inner, v, addFile(fmt.Sprint(i), 1))
	}
	gets, lists := store.gets.Load(), store.lists.Load()
	s, err := l.Snapshot(ctx, -1)
	if err != nil || s.Version != 3 || len(s.Files) != 3 {
		t.Fatalf("refresh: %v %+v", err, s)
	}
	// Three new commits plus one probe that finds nothing; no listing.
	if g, li := store.gets.Load()-gets, store.lists.Load()-lists; g != 4 || li != 0 {
		t.Errorf("refresh did %d gets and %d lists, want 4 and 0", g, li)
	}
	gets = store.gets.Load()
	if s2, _ := l.Snapshot(ctx, -1); s2 != s {
		t.Error("unchanged table returned a new snapshot")
	}
	if g := store.gets.Load() - gets; g != 1 {
		t.Errorf("no-op refresh did %d gets, want 1", g)
	}
}

func TestTimeTravel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c := newTable(t, nil)
	clock := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	c.Now = func() time.Time { clock = clock.Add(time.Minute); return clock }
	v := int64(0)
	for i := range 4 {
		v = mustCommit(t, c, store, v, addFile(fmt.Sprint(i), 1))
	}
	l := NewLog(store)
	hist, err := l.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	tsOf := map[int64]time.Time{}
	for _, h := range hist {
		tsOf[h.Version] = h.Timestamp
	}
	for v := int64(0); v <= 4; v++ {
		s, err := l.Snapshot(ctx, v)
		if err != nil || s.Version != v || len(s.Files) != int(v) || !s.Timestamp.Equal(tsOf[v]) {
			t.Fatalf("Snapshot(%d) = v%d %d files ts %v, err %v", v, s.Version, len(s.Files), s.Timestamp, err)
		}
	}
	cases := []struct {
		ts   time.Time
		want int64
	}{
		{tsOf[0], 0},
		{tsOf[2], 2},
		{tsOf[2].Add(30 * time.Second), 2},
		{tsOf[3].Add(-time.Millisecond), 2},
		{tsOf[4], 4},
		{tsOf[4].Add(time.Hour), 4},
	}
	for _, tc := range cases {
		s, err := NewLog(store).SnapshotAt(ctx, tc.ts)
		if err != nil || s.Version != tc.want {
			t.Errorf("SnapshotAt(%v) = %v, %v; want version %d", tc.ts, s, err, tc.want)
		}
	}
	_, err = l.SnapshotAt(ctx, tsOf[0].Add(-time.Second))
	if !errors.Is(err, ErrBeforeFirstCommit) || !strings.Contains(err.Error(), tsOf[0].Format(time.RFC3339)[:16]) {
		t.Errorf("before first commit: %v", err)
	}
	_, err = l.Snapshot(ctx, 9)
	if !errors.Is(err, ErrVersionNotFound) || !strings.Contains(err.Error(), "latest version is 4") {
		t.Errorf("missing version: %v", err)
	}
}

func TestInCommitTimestampAndMtime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := storage.NewMem("ict")
	v0, _ := EncodeActions(createActions(nil))
	store.Put(ctx, commitKey(0), v0)                                                                                 // no commitInfo: mtime
	store.Put(ctx, commitKey(1), []byte(`{"commitInfo":{"timestamp":5000,"inCommitTimestamp":9000000000000}}`+"\n")) // ICT wins
	l := NewLog(store)
	s0, err := l.Snapshot(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(s0.Timestamp) > time.Minute {
		t.Errorf("v0 timestamp %v should be the file's mtime", s0.Timestamp)
	}
	s1, _ := l.Snapshot(ctx, 1)
	if s1.Timestamp.UnixMilli() != 9000000000000 {
		t.Errorf("v1 timestamp %v should be the in-commit timestamp", s1.Timestamp)
	}
}

func TestCorruptCommitFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c := newTable(t, nil)
	mustCommit(t, c, store, 0, addFile("a", 1))
	store.PutIfAbsent(ctx, commitKey(2), []byte(`{"add":{"path":"b","partitionValues":{},"size":1,"modificationTime":1,"dataChange":true}}`+"\n{not json\n"))
	_, err := NewLog(store).Snapshot(ctx, -1)
	if !errors.Is(err, ErrCorruptLog) || !strings.Contains(err.Error(), "00000000000000000002.json line 2") {
		t.Fatalf("err = %v", err)
	}
	// Versions before the damage stay readable.
	if s, err := NewLog(store).Snapshot(ctx, 1); err != nil || s.Version != 1 {
		t.Errorf("v1: %v", err)
	}
}

func TestUnsupportedReaderFeatures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		p       Protocol
		wantErr string
	}{
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 7}, ""},
		{Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"timestampNtz"}}, ""},
		{Protocol{MinReaderVersion: 2, MinWriterVersion: 5}, "column mapping"},
		{Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"deletionVectors", "timestampNtz", "v2Checkpoint"}}, "deletionVectors, v2Checkpoint"},
		{Protocol{MinReaderVersion: 4}, "reader version 4"},
	}
	for _, tc := range cases {
		err := tc.p.CheckRead()
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.p, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%+v: err %v, want %q", tc.p, err, tc.wantErr)
		}
	}
}
