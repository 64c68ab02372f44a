package table

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lakehoused/lakehoused/storage"
)

// memStore is an in-memory storage.Store for tests.
type memStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	opens   int
}

func newMemStore() *memStore { return &memStore{objects: map[string][]byte{}} }

func (m *memStore) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	return bytes.Clone(b), nil
}

func (m *memStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b, err := m.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if off > int64(len(b)) {
		return nil, nil
	}
	return b[off:min(int64(len(b)), off+n)], nil
}

type readerAtCloser struct{ *bytes.Reader }

func (readerAtCloser) Close() error { return nil }

func (m *memStore) Open(ctx context.Context, key string) (storage.ReaderAtCloser, int64, error) {
	b, err := m.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	m.mu.Lock()
	m.opens++
	m.mu.Unlock()
	return readerAtCloser{bytes.NewReader(b)}, int64(len(b)), nil
}

func (m *memStore) Put(_ context.Context, key string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[key] = bytes.Clone(data)
	return nil
}

func (m *memStore) PutIfAbsent(_ context.Context, key string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[key]; ok {
		return fmt.Errorf("put %s: %w", key, storage.ErrExist)
	}
	m.objects[key] = bytes.Clone(data)
	return nil
}

func (m *memStore) List(_ context.Context, prefix string) ([]storage.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storage.ObjectInfo
	for k, v := range m.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, storage.ObjectInfo{Key: k, Size: int64(len(v)), ModTime: time.Unix(0, 0)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (m *memStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, key)
	return nil
}

func (m *memStore) Stat(_ context.Context, key string) (storage.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[key]
	if !ok {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotExist)
	}
	return storage.ObjectInfo{Key: key, Size: int64(len(b))}, nil
}

func (m *memStore) URL() string { return "mem://table" }

func (m *memStore) keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ks []string
	for k := range m.objects {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
