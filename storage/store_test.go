package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lakehoused/lakehoused/internal/s3test"
)

// stores returns one fresh instance of every Store implementation, so each behaviour
// test checks that Local and Mem (and a Sub view) agree.
func stores(t *testing.T) map[string]Store {
	t.Helper()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l2, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g := s3test.Start(t)
	cfg := S3Config{Endpoint: g.Endpoint, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Region: "us-east-1"}
	s3, err := NewS3(context.Background(), cfg, g.Bucket, "wh")
	if err != nil {
		t.Fatal(err)
	}
	s3b, err := NewS3(context.Background(), cfg, g.Bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Store{
		"local":     l,
		"mem":       NewMem("t"),
		"sub-local": Sub(l2, "db/tbl"),
		"sub-mem":   Sub(NewMem("t"), "db/tbl"),
		"s3":        s3,
		"sub-s3":    Sub(s3b, "db/tbl"),
		"cached-s3": Sub(NewCached(s3b, 1<<20), "cached"),
	}
}

func TestPutGetStatDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Get(ctx, "a/b.json"); !errors.Is(err, ErrNotExist) {
				t.Fatalf("get missing: want ErrNotExist, got %v", err)
			}
			if _, err := s.Stat(ctx, "a/b.json"); !errors.Is(err, ErrNotExist) {
				t.Fatalf("stat missing: want ErrNotExist, got %v", err)
			}
			if err := s.Put(ctx, "a/b.json", []byte("hello world")); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "a/b.json", []byte("hello again")); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, "a/b.json")
			if err != nil || string(got) != "hello again" {
				t.Fatalf("get = %q, %v", got, err)
			}
			part, err := s.GetRange(ctx, "a/b.json", 6, 100)
			if err != nil || string(part) != "again" {
				t.Fatalf("getrange = %q, %v", part, err)
			}
			part, err = s.GetRange(ctx, "a/b.json", 0, 5)
			if err != nil || string(part) != "hello" {
				t.Fatalf("getrange = %q, %v", part, err)
			}
			r, size, err := s.Open(ctx, "a/b.json")
			if err != nil || size != 11 {
				t.Fatalf("open size=%d err=%v", size, err)
			}
			buf := make([]byte, 4)
			if _, err := r.ReadAt(buf, 1); err != nil || string(buf) != "ello" {
				t.Fatalf("readat = %q, %v", buf, err)
			}
			r.Close()
			info, err := s.Stat(ctx, "a/b.json")
			if err != nil || info.Size != 11 || info.Key != "a/b.json" || info.ModTime.IsZero() {
				t.Fatalf("stat = %+v, %v", info, err)
			}
			if err := s.Delete(ctx, "a/b.json"); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "a/b.json"); err != nil {
				t.Fatalf("delete missing: %v", err)
			}
			if _, err := s.Get(ctx, "a/b.json"); !errors.Is(err, ErrNotExist) {
				t.Fatalf("get deleted: want ErrNotExist, got %v", err)
			}
		})
	}
}

func TestPutIfAbsent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if err := s.PutIfAbsent(ctx, "_delta_log/00.json", []byte("first")); err != nil {
				t.Fatal(err)
			}
			err := s.PutIfAbsent(ctx, "_delta_log/00.json", []byte("second"))
			if !errors.Is(err, ErrExist) {
				t.Fatalf("want ErrExist, got %v", err)
			}
			if !strings.Contains(err.Error(), "_delta_log/00.json") {
				t.Errorf("error does not name the key: %v", err)
			}
			got, _ := s.Get(ctx, "_delta_log/00.json")
			if string(got) != "first" {
				t.Fatalf("loser changed the object: %q", got)
			}
		})
	}
}

// TestPutIfAbsentRace is the property the Delta log depends on: of N writers racing for
// one name, exactly one wins and its content is what readers see.
func TestPutIfAbsentRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 16
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for round := range 5 {
				key := fmt.Sprintf("_delta_log/%020d.json", round)
				var wins atomic.Int32
				var winner atomic.Int32
				var wg sync.WaitGroup
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						err := s.PutIfAbsent(ctx, key, []byte(fmt.Sprint(i)))
						switch {
						case err == nil:
							wins.Add(1)
							winner.Store(int32(i))
						case !errors.Is(err, ErrExist):
							t.Errorf("writer %d: %v", i, err)
						}
					}()
				}
				wg.Wait()
				if wins.Load() != 1 {
					t.Fatalf("round %d: %d winners, want 1", round, wins.Load())
				}
				got, _ := s.Get(ctx, key)
				if string(got) != fmt.Sprint(winner.Load()) {
					t.Fatalf("content %q is not the winner's %d", got, winner.Load())
				}
			}
			objs, _ := s.List(ctx, "")
			if len(objs) != 5 {
				t.Fatalf("list after races: %v (temp files leaked?)", objs)
			}
		})
	}
}

func TestListSortedRecursive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	keys := []string{
		"_delta_log/00000000000000000010.json",
		"_delta_log/00000000000000000002.json",
		"_delta_log/00000000000000000002.checkpoint.parquet",
		"_delta_log/_last_checkpoint",
		"x=1/part-1.parquet",
		"x=1/y=2/part-2.parquet",
		"part-0.parquet",
		"_delta_logs/other",
	}
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for _, k := range keys {
				if err := s.Put(ctx, k, []byte(k)); err != nil {
					t.Fatal(err)
				}
			}
			cases := []struct {
				prefix string
				want   []string
			}{
				{"_delta_log/", []string{
					"_delta_log/00000000000000000002.checkpoint.parquet",
					"_delta_log/00000000000000000002.json",
					"_delta_log/00000000000000000010.json",
					"_delta_log/_last_checkpoint",
				}},
				{"_delta_log/0000000000000000001", []string{"_delta_log/00000000000000000010.json"}},
				{"x=1", []string{"x=1/part-1.parquet", "x=1/y=2/part-2.parquet"}},
				{"_delta_log", []string{
					"_delta_log/00000000000000000002.checkpoint.parquet",
					"_delta_log/00000000000000000002.json",
					"_delta_log/00000000000000000010.json",
					"_delta_log/_last_checkpoint",
					"_delta_logs/other",
				}},
				{"nope/", nil},
				{"", []string{
					"_delta_log/00000000000000000002.checkpoint.parquet",
					"_delta_log/00000000000000000002.json",
					"_delta_log/00000000000000000010.json",
					"_delta_log/_last_checkpoint",
					"_delta_logs/other",
					"part-0.parquet",
					"x=1/part-1.parquet",
					"x=1/y=2/part-2.parquet",
				}},
			}
			for _, c := range cases {
				objs, err := s.List(ctx, c.prefix)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, o := range objs {
					got = append(got, o.Key)
					if o.Size != int64(len(o.Key)) {
						t.Errorf("%s: size %d", o.Key, o.Size)
					}
				}
				if strings.Join(got, ",") != strings.Join(c.want, ",") {
					t.Errorf("List(%q)\n got %v\nwant %v", c.prefix, got, c.want)
				}
			}
		})
	}
}

func TestBadKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bad := []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.tmp-123"}
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for _, k := range bad {
				if err := s.Put(ctx, k, nil); err == nil {
					t.Errorf("Put(%q) accepted", k)
				}
				if _, err := s.Get(ctx, k); err == nil {
					t.Errorf("Get(%q) accepted", k)
				}
			}
			if _, err := s.List(ctx, "../"); err == nil {
				t.Error("List(../) accepted")
			}
		})
	}
}

func TestLocalSkipsTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, _ := NewLocal(dir)
	ctx := context.Background()
	if err := l.Put(ctx, "_delta_log/0.json", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A crash mid-write leaves a temp file behind; readers must not see it.
	if err := os.WriteFile(filepath.Join(dir, "_delta_log", ".tmp-999"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, _ := l.List(ctx, "_delta_log/")
	if len(objs) != 1 || objs[0].Key != "_delta_log/0.json" {
		t.Fatalf("list = %v", objs)
	}
}

func TestSubAndURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	wh, err := Open("file://" + dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl := Sub(wh, "db/tbl")
	if got, want := tbl.URL(), "file://"+dir+"/db/tbl"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	if got, want := Sub(tbl, "x").URL(), "file://"+dir+"/db/tbl/x"; got != want {
		t.Errorf("nested URL = %q, want %q", got, want)
	}
	if err := tbl.Put(ctx, "_delta_log/0.json", []byte("v0")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "db", "tbl", "_delta_log", "0.json"))
	if err != nil || !bytes.Equal(b, []byte("v0")) {
		t.Fatalf("file on disk: %q %v", b, err)
	}
	b, err = wh.Get(ctx, "db/tbl/_delta_log/0.json")
	if err != nil || string(b) != "v0" {
		t.Fatalf("through parent: %q %v", b, err)
	}
	objs, _ := tbl.List(ctx, "")
	if len(objs) != 1 || objs[0].Key != "_delta_log/0.json" {
		t.Fatalf("sub list = %v", objs)
	}
	info, err := tbl.Stat(ctx, "_delta_log/0.json")
	if err != nil || info.Key != "_delta_log/0.json" {
		t.Fatalf("sub stat = %+v %v", info, err)
	}
}

func TestOpenURL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		url     string
		wantErr string
	}{
		{dir, ""},
		{"file://" + dir, ""},
		{"s3://", "name a bucket"},
		{"relative/path", "absolute path"},
		{"file://host/x", "local path"},
		{"ftp://x/y", "unsupported scheme"},
	}
	for _, c := range cases {
		s, err := Open(c.url)
		if c.wantErr == "" {
			if err != nil {
				t.Errorf("Open(%q): %v", c.url, err)
			} else if s.URL() != "file://"+dir {
				t.Errorf("Open(%q).URL() = %q", c.url, s.URL())
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("Open(%q) error = %v, want it to mention %q", c.url, err, c.wantErr)
		}
	}
}

// TestStagePublish: staged data is invisible until published, a taken key leaves it staged
// for the next key, and Discard leaves nothing behind (no temp files in listings or on disk).
func TestStagePublish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if err := s.PutIfAbsent(ctx, "_delta_log/00.json", []byte("other")); err != nil {
				t.Fatal(err)
			}
			st, err := Stage(ctx, s, "_delta_log/00.json", []byte("mine"))
			if err != nil {
				t.Fatal(err)
			}
			if objs, _ := s.List(ctx, "_delta_log/"); len(objs) != 1 {
				t.Fatalf("staged data is visible: %v", objs)
			}
			if err := st.PublishIfAbsent(ctx, "_delta_log/00.json"); !errors.Is(err, ErrExist) {
				t.Fatalf("publish over an existing key: %v", err)
			}
			if err := st.PublishIfAbsent(ctx, "_delta_log/01.json"); err != nil {
				t.Fatal(err)
			}
			st.Discard() // after publish: a no-op
			if got, _ := s.Get(ctx, "_delta_log/01.json"); string(got) != "mine" {
				t.Fatalf("published %q", got)
			}
			if got, _ := s.Get(ctx, "_delta_log/00.json"); string(got) != "other" {
				t.Fatalf("the loser's key changed: %q", got)
			}
			st2, err := Stage(ctx, s, "_delta_log/02.json", []byte("dropped"))
			if err != nil {
				t.Fatal(err)
			}
			st2.Discard()
			if objs, _ := s.List(ctx, "_delta_log/"); len(objs) != 2 {
				t.Fatalf("after discard: %v", objs)
			}
			if _, err := Stage(ctx, s, "../x", nil); err == nil {
				t.Error("Stage accepted a bad key")
			}
		})
	}
	// On disk nothing but the two commits remains.
	l, _ := NewLocal(t.TempDir())
	st, _ := Stage(ctx, l, "a/x.json", []byte("1"))
	st.Discard()
	if err := st.PublishIfAbsent(ctx, "b/x.json"); err == nil {
		t.Error("published into another directory")
	}
	entries, _ := os.ReadDir(filepath.Join(l.root, "a"))
	if len(entries) != 0 {
		t.Errorf("files left after discard: %v", entries)
	}
}
