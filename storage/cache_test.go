package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// countingStore counts the reads that reach the store below the cache.
type countingStore struct {
	Store
	gets, ranges, stats int
}

func (c *countingStore) Get(ctx context.Context, k string) ([]byte, error) {
	c.gets++
	return c.Store.Get(ctx, k)
}

func (c *countingStore) GetRange(ctx context.Context, k string, off, n int64) ([]byte, error) {
	c.ranges++
	return c.Store.GetRange(ctx, k, off, n)
}

func (c *countingStore) Stat(ctx context.Context, k string) (ObjectInfo, error) {
	c.stats++
	return c.Store.Stat(ctx, k)
}

func TestCachedServesImmutableObjectsOnly(t *testing.T) {
	ctx := context.Background()
	under := &countingStore{Store: NewMem("t")}
	c := NewCached(under, 1<<20).(*Cached)
	data := []byte("0123456789abcdef")
	keys := []string{"part-1.parquet", "_delta_log/00000000000000000001.json", "_delta_log/_last_checkpoint", "_lakehouse/tables/x.json", "_artifacts/1/r/artifacts/m.parquet"}
	for _, k := range keys {
		if err := c.Put(ctx, k, data); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		for _, k := range keys {
			if got, err := c.Get(ctx, k); err != nil || string(got) != string(data) {
				t.Fatalf("get %s: %q %v", k, got, err)
			}
		}
		f, size, err := c.Open(ctx, "part-1.parquet")
		if err != nil || size != 16 {
			t.Fatal(size, err)
		}
		buf := make([]byte, 4)
		if n, err := f.ReadAt(buf, 12); n != 4 || err != nil || string(buf) != "cdef" {
			t.Fatalf("ReadAt: %d %v %q", n, err, buf)
		}
		if n, err := f.ReadAt(buf, 14); n != 2 || !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt past the end: %d %v", n, err)
		}
	}
	// The two immutable objects were read once each; the mutable ones (an artifact named
	// like a data file among them) every time.
	if under.gets != 2+3*3 {
		t.Errorf("%d gets reached the store, want 11", under.gets)
	}
	if under.ranges != 2 || under.stats != 1 {
		t.Errorf("%d range reads and %d stats reached the store, want 2 and 1", under.ranges, under.stats)
	}
	hits, misses, bytes := c.Stats()
	if hits == 0 || misses == 0 || bytes == 0 {
		t.Errorf("stats: %d hits %d misses %d bytes", hits, misses, bytes)
	}
	// A delete drops what the cache held: the object is gone for readers too.
	if err := c.Delete(ctx, "part-1.parquet"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "part-1.parquet"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := c.Stat(ctx, "part-1.parquet"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("stat after delete: %v", err)
	}
}

func TestCachedStaysWithinBudget(t *testing.T) {
	ctx := context.Background()
	c := NewCached(NewMem("t"), 8<<10).(*Cached)
	for i := 0; i < 100; i++ {
		k := fmt.Sprintf("part-%d.parquet", i)
		if err := c.Put(ctx, k, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, bytes := c.Stats(); bytes > 8<<10 {
		t.Fatalf("cache holds %d bytes, budget 8 KiB", bytes)
	}
	if len(c.byKey) != len(c.entries) {
		t.Fatalf("%d objects indexed for %d entries", len(c.byKey), len(c.entries))
	}
	if NewCached(NewMem("t"), 0) == nil {
		t.Fatal("a zero budget must return the store itself")
	}
}

func TestDiskCacheTier(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	under := &countingStore{Store: NewMem("t")}
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i)
	}
	if err := under.Put(ctx, "a.parquet", data); err != nil {
		t.Fatal(err)
	}
	disk, err := OpenDiskCache(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// A memory tier too small to hold anything: every repeat must come from disk.
	c := NewTieredCache(under, 16, disk).(*Cached)
	for i := 0; i < 3; i++ {
		got, err := c.GetRange(ctx, "a.parquet", 100, 200)
		if err != nil || string(got) != string(data[100:300]) {
			t.Fatalf("range %d: %v", i, err)
		}
	}
	if under.ranges != 1 {
		t.Fatalf("the store was read %d times, want 1", under.ranges)
	}
	if hits, _, bytes := disk.Stats(); hits != 2 || bytes != 204 {
		t.Fatalf("disk tier: %d hits, %d bytes; want 2 hits, 204 bytes", hits, bytes)
	}
	// A restart finds the files again.
	disk2, err := OpenDiskCache(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	c2 := NewTieredCache(under, 0, disk2).(*Cached)
	if got, err := c2.GetRange(ctx, "a.parquet", 100, 200); err != nil || string(got) != string(data[100:300]) || under.ranges != 1 {
		t.Fatalf("after a restart: %v, store reads %d", err, under.ranges)
	}
	// A torn file fails its checksum and is read from the store again.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("%d cache files, want 1", len(ents))
	}
	if err := os.WriteFile(filepath.Join(dir, ents[0].Name()), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := c2.GetRange(ctx, "a.parquet", 100, 200); err != nil || string(got) != string(data[100:300]) || under.ranges != 2 {
		t.Fatalf("after a torn file: %v, store reads %d", err, under.ranges)
	}
	// The budget bounds the directory, least recently used out first.
	small, err := OpenDiskCache(t.TempDir(), 8*204)
	if err != nil {
		t.Fatal(err)
	}
	c3 := NewTieredCache(under, 0, small).(*Cached)
	for off := int64(0); off < 800; off += 50 {
		if _, err := c3.GetRange(ctx, "a.parquet", off, 200); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, bytes := small.Stats(); bytes > 8*204 {
		t.Fatalf("disk tier holds %d bytes over its budget %d", bytes, 8*204)
	}
}
