// Package storage is the object-store seam under every table: a flat namespace of
// immutable-once-written objects addressed by slash-separated keys below a root URL.
//
// The Delta log needs exactly one mutual-exclusion primitive from storage, PutIfAbsent:
// two writers racing for _delta_log/<v>.json must see exactly one winner. Everything else
// (data files, checkpoints) is written under unique names and needs only durability.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotExist is returned (wrapped) when a key does not exist.
var ErrNotExist = errors.New("storage: object does not exist")

// ErrExist is returned (wrapped) by PutIfAbsent when the key already exists.
var ErrExist = errors.New("storage: object already exists")

// ErrOutcomeUnknown is returned (wrapped) when a write failed after the object may already
// have become visible (on a filesystem: the directory sync after the link failed). The
// caller must not assume the write did not happen; for a Delta commit, the data files it
// references must be kept.
var ErrOutcomeUnknown = errors.New("storage: the write may or may not have taken effect")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string    // key relative to the store's root, slash-separated
	Size    int64     // bytes
	ModTime time.Time // last modification
}

// Store is an object store rooted at a URL. Keys are relative, slash-separated and never
// start with "/". Every successful Put/PutIfAbsent is durable when it returns.
type Store interface {
	// Get returns the whole object.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange returns n bytes starting at off (fewer only at end of object).
	GetRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	// Open returns a random-access reader over the object (for Parquet footers and
	// column chunks) together with its size.
	Open(ctx context.Context, key string) (ReaderAtCloser, int64, error)
	// Put writes the object durably, replacing any previous one.
	Put(ctx context.Context, key string, data []byte) error
	// PutIfAbsent writes the object durably only if key does not exist; otherwise it
	// returns an error wrapping ErrExist and changes nothing.
	PutIfAbsent(ctx context.Context, key string, data []byte) error
	// List returns the objects whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Stat describes the object or returns an error wrapping ErrNotExist.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// URL is the root this store is addressed by (file:///abs/path or s3://bucket/prefix).
	URL() string
}

// Stager is implemented by stores that can write an object's bytes durably before giving
// them a name, so that the slow part of a PutIfAbsent (on a filesystem: writing and
// fsyncing a temporary file) can overlap other work, such as the data files a Delta commit
// references. Use the Stage function, which works on every store.
type Stager interface {
	// Stage writes data durably, invisible, in the place where key would go.
	Stage(ctx context.Context, key string, data []byte) (Staged, error)
}

// Staged is data written by Stage, not yet visible under any key.
type Staged interface {
	// PublishIfAbsent makes the staged data visible under key, durably, if key does not
	// exist; otherwise it returns an error wrapping ErrExist and the data stays staged (it
	// may be published under another key). key must share the directory of the key given
	// to Stage.
	PublishIfAbsent(ctx context.Context, key string) error
	// Discard drops data that was not published; it is a no-op after a publish.
	Discard()
}

// Stage stages data for key in s: durably ahead of time when s is a Stager, otherwise in
// memory, to be written by PutIfAbsent on publish.
func Stage(ctx context.Context, s Store, key string, data []byte) (Staged, error) {
	if st, ok := s.(Stager); ok {
		return st.Stage(ctx, key, data)
	}
	if err := checkKey("put", key); err != nil {
		return nil, err
	}
	return &memStaged{s: s, data: data}, nil
}

type memStaged struct {
	s    Store
	data []byte
}

func (m *memStaged) PublishIfAbsent(ctx context.Context, key string) error {
	return m.s.PutIfAbsent(ctx, key, m.data)
}

func (m *memStaged) Discard() {}

// TempCleaner is a store that writes through temp files (Local) and can delete the ones a
// crash left behind. VACUUM FULL uses it; stores without temp files need not implement it.
type TempCleaner interface {
	RemoveStaleTemps(ctx context.Context, prefix string, olderThan time.Time, dryRun bool) (files int, bytes int64, err error)
}

// ReaderAtCloser is a random-access reader that must be closed.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
}

// openByRanges opens key of a store whose reads are requests (S3, and the cache in front of
// it): Stat for the size, then every ReadAt is one GetRange.
func openByRanges(ctx context.Context, s Store, key string) (ReaderAtCloser, int64, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	return &rangeFile{s: s, ctx: context.WithoutCancel(ctx), key: key, size: info.Size}, info.Size, nil
}

// rangeFile reads an object by ranges; ReadAt is safe for concurrent use.
type rangeFile struct {
	s    Store
	ctx  context.Context
	key  string
	size int64
}

func (f *rangeFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	data, err := f.s.GetRange(f.ctx, f.key, off, min(int64(len(p)), f.size-off))
	if err != nil {
		return 0, err
	}
	n := copy(p, data)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *rangeFile) Close() error { return nil }
