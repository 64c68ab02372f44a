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

// ReaderAtCloser is a random-access reader that must be closed.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
}
