package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Local is a Store over a directory of the local filesystem.
//
// Every write goes to a temp file in the destination directory, is fsync'd, and is then
// given its name atomically (rename for Put, link for PutIfAbsent), after which the
// directory is fsync'd. A reader therefore sees either no object or the whole object, and
// an object that was acknowledged survives a power cut.
type Local struct {
	root string // absolute, cleaned
}

// NewLocal returns a Store rooted at the directory root, creating it if needed.
func NewLocal(root string) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", abs, err)
	}
	return &Local{root: abs}, nil
}

// Root is the absolute directory the store is rooted at.
func (l *Local) Root() string { return l.root }

// URL is file:// plus the absolute root.
func (l *Local) URL() string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(l.root)}
	return u.String()
}

func (l *Local) path(key string) string {
	return filepath.Join(l.root, filepath.FromSlash(key))
}

// wrap turns an OS error into a storage error that names the operation and key, and
// that wraps ErrNotExist / ErrExist where they apply.
func wrap(op, key string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("storage: %s %s: %w (%v)", op, key, ErrNotExist, err)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("storage: %s %s: %w", op, key, ErrExist)
	}
	return fmt.Errorf("storage: %s %s: %w", op, key, err)
}

// Get returns the whole object.
func (l *Local) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey("get", key); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(l.path(key))
	if err != nil {
		return nil, wrap("get", key, err)
	}
	return b, nil
}

// GetRange returns n bytes at off (fewer only at the end of the object).
func (l *Local) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := checkKey("get", key); err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("storage: get %s: negative range off=%d n=%d", key, off, n)
	}
	f, err := os.Open(l.path(key))
	if err != nil {
		return nil, wrap("get", key, err)
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, wrap("get", key, err)
	}
	return buf[:m], nil
}

// Open returns the file itself as the random-access reader.
func (l *Local) Open(ctx context.Context, key string) (ReaderAtCloser, int64, error) {
	if err := checkKey("open", key); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(l.path(key))
	if err != nil {
		return nil, 0, wrap("open", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, wrap("open", key, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("storage: open %s: %w (it is a directory)", key, ErrNotExist)
	}
	return f, st.Size(), nil
}

// Put writes the object durably, replacing any previous one.
func (l *Local) Put(ctx context.Context, key string, data []byte) error {
	if err := checkKey("put", key); err != nil {
		return err
	}
	tmp, err := l.writeTemp(key, data)
	if err != nil {
		return wrap("put", key, err)
	}
	if err := os.Rename(tmp, l.path(key)); err != nil {
		os.Remove(tmp)
		return wrap("put", key, err)
	}
	if err := syncDir(filepath.Dir(l.path(key))); err != nil {
		return wrap("put", key, err)
	}
	return nil
}

// PutIfAbsent writes the object durably only if the key does not exist.
//
// link(2) is used instead of rename(2) because rename silently replaces an existing
// target, while link fails with EEXIST: that failure is the mutual exclusion the Delta log
// relies on for _delta_log/<v>.json. The temp file is complete and fsync'd before the link,
// so the winner's content is whole the moment its name appears.
func (l *Local) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if err := checkKey("put", key); err != nil {
		return err
	}
	// Cheap early exit; the link below is what actually decides.
	if _, err := os.Lstat(l.path(key)); err == nil {
		return fmt.Errorf("storage: put %s: %w", key, ErrExist)
	}
	st, err := l.Stage(ctx, key, data)
	if err != nil {
		return err
	}
	defer st.Discard()
	return st.PublishIfAbsent(ctx, key)
}

// Stage implements Stager: data goes to a new fsync'd temp file in key's directory.
func (l *Local) Stage(ctx context.Context, key string, data []byte) (Staged, error) {
	if err := checkKey("put", key); err != nil {
		return nil, err
	}
	tmp, err := l.writeTemp(key, data)
	if err != nil {
		return nil, wrap("put", key, err)
	}
	return &localStaged{l: l, tmp: tmp}, nil
}

type localStaged struct {
	l         *Local
	tmp       string
	published bool
}

func (s *localStaged) PublishIfAbsent(ctx context.Context, key string) error {
	if err := checkKey("put", key); err != nil {
		return err
	}
	dst := s.l.path(key)
	if filepath.Dir(dst) != filepath.Dir(s.tmp) {
		return fmt.Errorf("storage: publish %s: staged in another directory (%s)", key, filepath.Dir(s.tmp))
	}
	if s.published {
		return fmt.Errorf("storage: publish %s: already published", key)
	}
	if err := os.Link(s.tmp, dst); err != nil {
		return wrap("put", key, err)
	}
	s.published = true
	// Removing the temp name before syncing the directory means the synced directory
	// holds only the final name.
	os.Remove(s.tmp)
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("storage: put %s: %w: syncing the directory: %v", key, ErrOutcomeUnknown, err)
	}
	return nil
}

func (s *localStaged) Discard() {
	if !s.published {
		os.Remove(s.tmp)
	}
}

// writeTemp writes data to a new fsync'd temp file next to key's final name, creating
// (and syncing) the parent directories first.
func (l *Local) writeTemp(key string, data []byte) (string, error) {
	dir := filepath.Dir(l.path(key))
	if err := l.mkdirAll(dir); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, TempPrefix+"*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// mkdirAll creates dir and its missing parents below the root and fsyncs the parent of
// every directory it created, so a durable object is never left under a directory entry
// that a crash could lose.
func (l *Local) mkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	var missing []string
	for d := dir; d != l.root && len(d) > len(l.root); d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := syncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

// syncDir fsyncs a directory so that entries created or renamed in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// List returns all objects whose keys start with prefix, recursively, sorted by key.
// Temp files of in-flight writes are skipped.
func (l *Local) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	// Walk only the deepest directory the prefix fully names.
	start := l.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = l.path(prefix[:i])
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a missing directory lists as empty
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(l.root, p)
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			// Prune directories that cannot contain a match.
			if p != start && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), TempPrefix) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while listing
			}
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: list %s: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object; a missing key is not an error.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := checkKey("delete", key); err != nil {
		return err
	}
	if err := os.Remove(l.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return wrap("delete", key, err)
	}
	return nil
}

// Stat describes the object.
func (l *Local) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := checkKey("stat", key); err != nil {
		return ObjectInfo{}, err
	}
	st, err := os.Stat(l.path(key))
	if err != nil {
		return ObjectInfo{}, wrap("stat", key, err)
	}
	if st.IsDir() {
		return ObjectInfo{}, fmt.Errorf("storage: stat %s: %w (it is a directory)", key, ErrNotExist)
	}
	return ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// RemoveStaleTemps deletes temp files under prefix (left by writes a crash interrupted)
// last modified before olderThan, and reports how many and their bytes. With dryRun it
// only counts them. List never shows temp files, so this is the only way to see them.
func (l *Local) RemoveStaleTemps(ctx context.Context, prefix string, olderThan time.Time, dryRun bool) (files int, bytes int64, err error) {
	if err := checkPrefix(prefix); err != nil {
		return 0, 0, err
	}
	start := l.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = l.path(prefix[:i])
	}
	err = filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), TempPrefix) {
			return nil
		}
		rel, _ := filepath.Rel(l.root, p)
		if !strings.HasPrefix(filepath.ToSlash(rel), prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.ModTime().Before(olderThan) {
			return nil
		}
		if !dryRun {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return wrap("delete", filepath.ToSlash(rel), err)
			}
		}
		files++
		bytes += info.Size()
		return nil
	})
	return files, bytes, err
}
