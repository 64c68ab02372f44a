package storage

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// DiskCache is the second tier of the S3 read cache: byte ranges and whole objects that fall
// out of (or do not fit) the memory cache are kept as files in a local directory, least
// recently used first out, up to a byte budget. It survives restarts: the files are named by
// a hash of (store URL, key, range), so the index is rebuilt from a directory listing.
// Every file carries a CRC-32C of its content, checked on each read, so a file torn by a
// crash is dropped instead of served. Only immutable objects reach it (see Cached).
type DiskCache struct {
	dir    string
	budget int64

	mu    sync.Mutex
	files map[string]*list.Element // name → element of lru (value *diskEntry)
	lru   *list.List               // front = most recent
	size  int64

	hits, misses atomic.Int64
}

type diskEntry struct {
	name string
	size int64
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenDiskCache opens (creating) the cache directory and indexes what an earlier run left,
// most recently modified first.
func OpenDiskCache(dir string, budget int64) (*DiskCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: disk cache %s: %w", dir, err)
	}
	d := &DiskCache{dir: dir, budget: budget, files: map[string]*list.Element{}, lru: list.New()}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: disk cache %s: %w", dir, err)
	}
	type found struct {
		name string
		size int64
		mod  int64
	}
	var fs []found
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			os.Remove(filepath.Join(dir, e.Name())) // a write a crash interrupted
			continue
		}
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			fs = append(fs, found{e.Name(), info.Size(), info.ModTime().UnixNano()})
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].mod > fs[j].mod })
	for _, f := range fs {
		d.files[f.name] = d.lru.PushBack(&diskEntry{name: f.name, size: f.size})
		d.size += f.size
	}
	d.mu.Lock()
	d.evict()
	d.mu.Unlock()
	return d, nil
}

// Stats returns the disk tier's hits, misses and bytes held.
func (d *DiskCache) Stats() (hits, misses, bytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hits.Load(), d.misses.Load(), d.size
}

func diskName(storeURL string, k cacheKey) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d", storeURL, k.key, k.off, k.n)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (d *DiskCache) get(storeURL string, k cacheKey) ([]byte, bool) {
	name := diskName(storeURL, k)
	d.mu.Lock()
	el, ok := d.files[name]
	if ok {
		d.lru.MoveToFront(el)
	}
	d.mu.Unlock()
	if !ok {
		d.misses.Add(1)
		return nil, false
	}
	raw, err := os.ReadFile(filepath.Join(d.dir, name))
	if err != nil || len(raw) < 4 || binary.LittleEndian.Uint32(raw) != crc32.Checksum(raw[4:], castagnoli) {
		d.remove(name)
		d.misses.Add(1)
		return nil, false
	}
	d.hits.Add(1)
	return raw[4:], true
}

func (d *DiskCache) put(storeURL string, k cacheKey, data []byte) {
	if int64(len(data))+4 > d.budget/8 {
		return
	}
	name := diskName(storeURL, k)
	d.mu.Lock()
	_, ok := d.files[name]
	d.mu.Unlock()
	if ok {
		return
	}
	buf := make([]byte, 4+len(data))
	binary.LittleEndian.PutUint32(buf, crc32.Checksum(data, castagnoli))
	copy(buf[4:], data)
	path := filepath.Join(d.dir, name)
	// No fsync: a file a crash tears fails its checksum and is dropped.
	if err := os.WriteFile(path+".tmp", buf, 0o644); err != nil {
		return
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		os.Remove(path + ".tmp")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.files[name]; ok {
		return
	}
	d.files[name] = d.lru.PushFront(&diskEntry{name: name, size: int64(len(buf))})
	d.size += int64(len(buf))
	d.evict()
}

func (d *DiskCache) remove(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.files[name]; ok {
		d.drop(el)
	}
}

// evict drops the least recently used files until the cache fits; d.mu is held.
func (d *DiskCache) evict() {
	for d.size > d.budget && d.lru.Len() > 0 {
		d.drop(d.lru.Back())
	}
}

func (d *DiskCache) drop(el *list.Element) {
	e := el.Value.(*diskEntry)
	d.lru.Remove(el)
	delete(d.files, e.name)
	d.size -= e.size
	os.Remove(filepath.Join(d.dir, e.name))
}
