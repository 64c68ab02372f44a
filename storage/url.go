package storage

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Open returns the Store addressed by rawURL with the S3 settings of the environment:
// file:///abs/path or a plain absolute path gives a Local store, s3://bucket/prefix an S3
// store.
func Open(rawURL string) (Store, error) { return Opener{}.Open(rawURL) }

// Opener opens stores by URL with one process's S3 settings (--s3-endpoint and the AWS_*
// variables).
type Opener struct {
	S3 S3Config
	// S3CacheBytes is the memory read cache in front of each S3 store (data files, commits
	// and checkpoints, which never change); 0 disables it.
	S3CacheBytes int64
	// S3Disk is the disk tier behind the memory cache, shared by every S3 store; nil
	// disables it.
	S3Disk *DiskCache
}

// Open returns the Store addressed by rawURL.
func (o Opener) Open(rawURL string) (Store, error) {
	if filepath.IsAbs(rawURL) {
		return NewLocal(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage: open %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("storage: open %q: file URLs must name a local path (file:///abs/path), not host %q", rawURL, u.Host)
		}
		if !filepath.IsAbs(u.Path) {
			return nil, fmt.Errorf("storage: open %q: path must be absolute (file:///abs/path)", rawURL)
		}
		return NewLocal(u.Path)
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("storage: open %q: name a bucket (s3://bucket/prefix)", rawURL)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s3, err := NewS3(ctx, o.S3, u.Host, u.Path)
		if err != nil {
			return nil, err
		}
		return NewTieredCache(s3, o.S3CacheBytes, o.S3Disk), nil
	case "":
		return nil, fmt.Errorf("storage: open %q: need an absolute path or a URL (file:///abs/path, s3://bucket/prefix)", rawURL)
	}
	return nil, fmt.Errorf("storage: open %q: unsupported scheme %q; use file:// or s3://", rawURL, u.Scheme)
}

// Sub returns a view of s below prefix: key k of the view is key prefix+"/"+k of s. A
// table's store is the warehouse store plus "db/tbl".
func Sub(s Store, prefix string) Store {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return s
	}
	if p, ok := s.(*subStore); ok {
		return &subStore{parent: p.parent, prefix: p.prefix + prefix + "/"}
	}
	return &subStore{parent: s, prefix: prefix + "/"}
}

type subStore struct {
	parent Store
	prefix string // ends in "/"
}

func (s *subStore) URL() string {
	return strings.TrimSuffix(s.parent.URL(), "/") + "/" + strings.TrimSuffix(s.prefix, "/")
}

func (s *subStore) key(op, k string) (string, error) {
	if err := checkKey(op, k); err != nil {
		return "", err
	}
	return s.prefix + k, nil
}

func (s *subStore) Get(ctx context.Context, k string) ([]byte, error) {
	full, err := s.key("get", k)
	if err != nil {
		return nil, err
	}
	return s.parent.Get(ctx, full)
}

func (s *subStore) GetRange(ctx context.Context, k string, off, n int64) ([]byte, error) {
	full, err := s.key("get", k)
	if err != nil {
		return nil, err
	}
	return s.parent.GetRange(ctx, full, off, n)
}

func (s *subStore) Open(ctx context.Context, k string) (ReaderAtCloser, int64, error) {
	full, err := s.key("open", k)
	if err != nil {
		return nil, 0, err
	}
	return s.parent.Open(ctx, full)
}

func (s *subStore) Put(ctx context.Context, k string, data []byte) error {
	full, err := s.key("put", k)
	if err != nil {
		return err
	}
	return s.parent.Put(ctx, full, data)
}

func (s *subStore) PutIfAbsent(ctx context.Context, k string, data []byte) error {
	full, err := s.key("put", k)
	if err != nil {
		return err
	}
	return s.parent.PutIfAbsent(ctx, full, data)
}

func (s *subStore) Stage(ctx context.Context, k string, data []byte) (Staged, error) {
	full, err := s.key("put", k)
	if err != nil {
		return nil, err
	}
	st, err := Stage(ctx, s.parent, full, data)
	if err != nil {
		return nil, err
	}
	return subStaged{st, s}, nil
}

type subStaged struct {
	Staged
	s *subStore
}

func (p subStaged) PublishIfAbsent(ctx context.Context, k string) error {
	full, err := p.s.key("put", k)
	if err != nil {
		return err
	}
	return p.Staged.PublishIfAbsent(ctx, full)
}

func (s *subStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	objs, err := s.parent.List(ctx, s.prefix+prefix)
	if err != nil {
		return nil, err
	}
	for i := range objs {
		objs[i].Key = strings.TrimPrefix(objs[i].Key, s.prefix)
	}
	return objs, nil
}

func (s *subStore) Delete(ctx context.Context, k string) error {
	full, err := s.key("delete", k)
	if err != nil {
		return err
	}
	return s.parent.Delete(ctx, full)
}

func (s *subStore) Stat(ctx context.Context, k string) (ObjectInfo, error) {
	full, err := s.key("stat", k)
	if err != nil {
		return ObjectInfo{}, err
	}
	info, err := s.parent.Stat(ctx, full)
	info.Key = k
	return info, err
}

// RemoveStaleTemps forwards to the parent store when it keeps temp files (Local).
func (s *subStore) RemoveStaleTemps(ctx context.Context, prefix string, olderThan time.Time, dryRun bool) (int, int64, error) {
	tc, ok := s.parent.(TempCleaner)
	if !ok {
		return 0, 0, nil
	}
	return tc.RemoveStaleTemps(ctx, s.prefix+prefix, olderThan, dryRun)
}
