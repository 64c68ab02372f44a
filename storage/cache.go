package storage

import (
	"container/list"
	"context"
	"strings"
	"sync"
	"sync/atomic"
)

// Cached is a read cache in front of a store whose reads cost a network round trip (S3):
// whole objects and byte ranges of immutable objects are kept in memory, least recently used
// first out, up to a byte budget. Only objects that never change once written are cached:
// data files (*.parquet, named uniquely by their writer) and commit files and checkpoints
// under _delta_log/ (written once, by put-if-absent or under a version's name). Everything
// else (_last_checkpoint, catalog entries) goes to the store every time, and any write or
// delete of a key drops what the cache holds for it.
type Cached struct {
	Store
	budget int64
	disk   *DiskCache // second tier; nil = memory only

	mu      sync.Mutex
	stats   map[string]ObjectInfo
	entries map[cacheKey]*list.Element
	byKey   map[string][]cacheKey // the entries of each object, for forget
	lru     *list.List            // front = most recent
	size    int64

	hits, misses atomic.Int64
}

type cacheKey struct {
	key    string
	off, n int64 // n < 0: the whole object
}

type cacheEntry struct {
	k    cacheKey
	data []byte
}

// NewCached wraps s with a cache of at most budget bytes; budget <= 0 returns s unwrapped.
func NewCached(s Store, budget int64) Store {
	return NewTieredCache(s, budget, nil)
}

// NewTieredCache wraps s with a memory cache of budget bytes in front of disk (which may be
// nil, and may be shared by several stores). It returns s unwrapped when there is neither.
func NewTieredCache(s Store, budget int64, disk *DiskCache) Store {
	if budget <= 0 && disk == nil {
		return s
	}
	return &Cached{Store: s, budget: max(budget, 0), disk: disk, stats: map[string]ObjectInfo{}, entries: map[cacheKey]*list.Element{}, byKey: map[string][]cacheKey{}, lru: list.New()}
}

// Disk returns the disk tier, or nil.
func (c *Cached) Disk() *DiskCache { return c.disk }

// immutable reports keys whose content never changes once written: Delta data files and
// commits. Folders whose names start with "_" (other than _delta_log) hold no table data
// (Delta readers skip them); the daemon keeps state there that is rewritten, such as MLflow
// artifacts, whatever the files are named.
func immutable(key string) bool {
	if first, _, _ := strings.Cut(key, "/"); strings.HasPrefix(first, "_") && first != "_delta_log" {
		return false
	}
	if strings.HasSuffix(key, ".parquet") {
		return true
	}
	i := strings.LastIndex(key, "_delta_log/")
	if i < 0 {
		return false
	}
	name := key[i+len("_delta_log/"):]
	return len(name) > 20 && name[20] == '.' && (strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".checkpoint.parquet"))
}

// Stats returns the cache's hits, misses and bytes held.
func (c *Cached) Stats() (hits, misses, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits.Load(), c.misses.Load(), c.size
}

func (c *Cached) lookup(k cacheKey) ([]byte, bool) {
	c.mu.Lock()
	if el, ok := c.entries[k]; ok {
		c.lru.MoveToFront(el)
		c.hits.Add(1)
		c.mu.Unlock()
		return el.Value.(*cacheEntry).data, true
	}
	c.misses.Add(1)
	c.mu.Unlock()
	if c.disk != nil {
		if data, ok := c.disk.get(c.Store.URL(), k); ok {
			c.keep(k, data)
			return data, true
		}
	}
	return nil, false
}

// remember caches data read from the store in both tiers.
func (c *Cached) remember(k cacheKey, data []byte) {
	if c.disk != nil {
		c.disk.put(c.Store.URL(), k, data)
	}
	c.keep(k, data)
}

// keep puts data in the memory tier.
func (c *Cached) keep(k cacheKey, data []byte) {
	if int64(len(data)) > c.budget/8 {
		return // one object must not flush the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; ok {
		return
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{k: k, data: data})
	c.byKey[k.key] = append(c.byKey[k.key], k)
	c.size += int64(len(data))
	for c.size > c.budget {
		c.drop(c.lru.Back().Value.(*cacheEntry).k)
	}
}

// drop removes one entry; c.mu is held.
func (c *Cached) drop(k cacheKey) {
	el, ok := c.entries[k]
	if !ok {
		return
	}
	c.lru.Remove(el)
	delete(c.entries, k)
	c.size -= int64(len(el.Value.(*cacheEntry).data))
	ks := c.byKey[k.key]
	for i, x := range ks {
		if x == k {
			ks = append(ks[:i], ks[i+1:]...)
			break
		}
	}
	if len(ks) == 0 {
		delete(c.byKey, k.key)
	} else {
		c.byKey[k.key] = ks
	}
}

// forget drops every entry of key (after a write or delete of it).
func (c *Cached) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.stats, key)
	for _, k := range append([]cacheKey(nil), c.byKey[key]...) {
		c.drop(k)
	}
}

func (c *Cached) Get(ctx context.Context, key string) ([]byte, error) {
	if !immutable(key) {
		return c.Store.Get(ctx, key)
	}
	k := cacheKey{key: key, n: -1}
	if data, ok := c.lookup(k); ok {
		return data, nil
	}
	data, err := c.Store.Get(ctx, key)
	if err == nil {
		c.remember(k, data)
	}
	return data, err
}

func (c *Cached) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if !immutable(key) {
		return c.Store.GetRange(ctx, key, off, n)
	}
	k := cacheKey{key: key, off: off, n: n}
	if data, ok := c.lookup(k); ok {
		return data, nil
	}
	data, err := c.Store.GetRange(ctx, key, off, n)
	if err == nil {
		c.remember(k, data)
	}
	return data, err
}

// Open reads through the cache by ranges; the size comes from the store (a HEAD request),
// cached with the object's identity.
func (c *Cached) Open(ctx context.Context, key string) (ReaderAtCloser, int64, error) {
	if !immutable(key) {
		return c.Store.Open(ctx, key)
	}
	return openByRanges(ctx, c, key)
}

// Stat of an immutable object is remembered (its size never changes), so opening a data
// file again costs no request.
func (c *Cached) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if !immutable(key) {
		return c.Store.Stat(ctx, key)
	}
	c.mu.Lock()
	info, ok := c.stats[key]
	c.mu.Unlock()
	if ok {
		c.hits.Add(1)
		return info, nil
	}
	info, err := c.Store.Stat(ctx, key)
	if err != nil {
		return info, err
	}
	c.mu.Lock()
	if len(c.stats) >= maxCachedStats {
		clear(c.stats) // a crude bound: sizes are cheap to fetch again
	}
	c.stats[key] = info
	c.mu.Unlock()
	return info, nil
}

// maxCachedStats bounds the remembered object sizes (~100 B each).
const maxCachedStats = 100_000

func (c *Cached) Put(ctx context.Context, key string, data []byte) error {
	c.forget(key)
	return c.Store.Put(ctx, key, data)
}

func (c *Cached) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	c.forget(key)
	return c.Store.PutIfAbsent(ctx, key, data)
}

func (c *Cached) Delete(ctx context.Context, key string) error {
	c.forget(key)
	return c.Store.Delete(ctx, key)
}
