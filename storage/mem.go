package storage

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Mem is an in-memory Store for tests, with the same semantics as Local (including the
// exclusivity of PutIfAbsent). Like hashicorp/raft's InmemStore, it lets tests of higher
// packages run without a filesystem.
type Mem struct {
	url string
	now func() time.Time

	mu   sync.RWMutex
	objs map[string]memObject
}

type memObject struct {
	data    []byte
	modTime time.Time
}

// NewMem returns an empty in-memory store whose URL is mem://<name>.
func NewMem(name string) *Mem {
	return &Mem{url: "mem://" + name, now: time.Now, objs: map[string]memObject{}}
}

// URL is mem://<name>.
func (m *Mem) URL() string { return m.url }

// Get returns a copy of the whole object.
func (m *Mem) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey("get", key); err != nil {
		return nil, err
	}
	m.mu.RLock()
	o, ok := m.objs[key]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("storage: get %s: %w", key, ErrNotExist)
	}
	return append([]byte(nil), o.data...), nil
}

// GetRange returns n bytes at off (fewer only at the end of the object).
func (m *Mem) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b, err := m.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("storage: get %s: negative range off=%d n=%d", key, off, n)
	}
	if off >= int64(len(b)) {
		return []byte{}, nil
	}
	end := min(off+n, int64(len(b)))
	return b[off:end], nil
}

// Open returns a reader over a snapshot of the object.
func (m *Mem) Open(ctx context.Context, key string) (ReaderAtCloser, int64, error) {
	b, err := m.Get(ctx, key)
	if err != nil {
		return nil, 0, fmt.Errorf("storage: open %s: %w", key, ErrNotExist)
	}
	return nopCloser{strings.NewReader(string(b))}, int64(len(b)), nil
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// Put stores a copy of data under key.
func (m *Mem) Put(ctx context.Context, key string, data []byte) error {
	if err := checkKey("put", key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = memObject{data: append([]byte(nil), data...), modTime: m.now()}
	return nil
}

// PutIfAbsent stores data only if key is absent.
func (m *Mem) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if err := checkKey("put", key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[key]; ok {
		return fmt.Errorf("storage: put %s: %w", key, ErrExist)
	}
	m.objs[key] = memObject{data: append([]byte(nil), data...), modTime: m.now()}
	return nil
}

// List returns the objects under prefix sorted by key.
func (m *Mem) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	m.mu.RLock()
	var out []ObjectInfo
	for k, o := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, ObjectInfo{Key: k, Size: int64(len(o.data)), ModTime: o.modTime})
		}
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes key; a missing key is not an error.
func (m *Mem) Delete(ctx context.Context, key string) error {
	if err := checkKey("delete", key); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.objs, key)
	m.mu.Unlock()
	return nil
}

// Stat describes key.
func (m *Mem) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := checkKey("stat", key); err != nil {
		return ObjectInfo{}, err
	}
	m.mu.RLock()
	o, ok := m.objs[key]
	m.mu.RUnlock()
	if !ok {
		return ObjectInfo{}, fmt.Errorf("storage: stat %s: %w", key, ErrNotExist)
	}
	return ObjectInfo{Key: key, Size: int64(len(o.data)), ModTime: o.modTime}, nil
}
