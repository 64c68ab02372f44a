package connector

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/lakehoused/lakehoused/storage"
)

// ErrNotAllowed is returned (wrapped) for a URL the server's settings do not let a user
// read or write: a file outside the import directories, a private address over HTTP.
var ErrNotAllowed = errors.New("not allowed by the server's settings")

// Resolver turns URLs given in SQL into readable and writable objects, under the server's
// rules: file:// only inside ImportDirs (after resolving symlinks), s3:// through the
// server's S3 settings, http(s):// only to public addresses unless AllowPrivateHTTP.
type Resolver struct {
	// ImportDirs are the absolute directories file:// URLs may name, for reading and for
	// exports. Empty refuses every file:// URL.
	ImportDirs []string
	// S3 reaches s3:// URLs (endpoint and credentials, as for the warehouse).
	S3 storage.S3Config
	// Deny are locations no URL may read or write even inside an import directory: the
	// node's data directory (its key and connections) and the warehouse (tables are read
	// and changed through SQL, not behind its back). file:///abs/path or s3://bucket/prefix.
	Deny []string
	// AllowPrivateHTTP lets http(s):// URLs reach loopback, private and link-local
	// addresses (tests and trusted networks).
	AllowPrivateHTTP bool
	// HTTPTimeout bounds connecting and waiting for response headers; default 30 s.
	HTTPTimeout time.Duration

	once   sync.Once
	client *http.Client
	mu     sync.Mutex
	s3     map[string]*storage.S3 // by bucket
}

// Location is one object a URL named (a glob names several).
type Location struct {
	URL  string // canonical: file:///abs/path, s3://bucket/key, http(s)://…
	Size int64  // bytes; -1 when unknown until read (HTTP)

	scheme string
	path   string // local path (file) or key (s3)
	bucket string
	dir    string // file: the import directory the path lies in; reads go through os.Root
	rel    string // file: the path relative to dir
}

// Name is the last element of the location's path, for messages.
func (l Location) Name() string { return path.Base(l.path) }

func (r *Resolver) notAllowedFile(p string) error {
	how := "start the server with --import-dir DIR to allow a directory"
	if len(r.ImportDirs) > 0 {
		how = fmt.Sprintf("allowed directories are %s; start the server with --import-dir DIR to allow another", strings.Join(r.ImportDirs, ", "))
	}
	return fmt.Errorf("reading or writing %s is %w: it is outside the import directories (%s)", p, ErrNotAllowed, how)
}

// localPath checks that the file URL raw names a path inside an import directory without
// "..", lexically; symlinks are checked on the real path by confine.
func (r *Resolver) localPath(raw string) (string, error) {
	p := raw
	if strings.HasPrefix(raw, "file:") {
		u, err := url.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("malformed URL %q: %w", raw, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("file URL %q must name a local path (file:///abs/path), not host %q", raw, u.Host)
		}
		p = u.Path
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("file URL %q must name an absolute path (file:///abs/path)", raw)
	}
	if slices.Contains(strings.Split(filepath.ToSlash(p), "/"), "..") {
		return "", fmt.Errorf("file URL %q: %w: paths may not contain '..'", raw, ErrNotAllowed)
	}
	p = filepath.Clean(p)
	if _, ok := r.importDir(p); !ok {
		return "", r.notAllowedFile(p)
	}
	if err := r.denied("file://" + filepath.ToSlash(p)); err != nil {
		return "", err
	}
	return p, nil
}

// denied refuses URLs at or under a Deny location, except inside an import directory that
// lies deeper than it (the default import directory is inside the data directory).
func (r *Resolver) denied(u string) error {
	under := func(u, d string) bool { return u == d || strings.HasPrefix(u, d+"/") }
	for _, d := range r.Deny {
		d = strings.TrimSuffix(d, "/")
		if !under(u, d) {
			continue
		}
		carved := false
		for _, dir := range r.ImportDirs {
			iu := "file://" + filepath.ToSlash(filepath.Clean(dir))
			if iu != d && under(iu, d) && under(u, iu) {
				carved = true
			}
		}
		if !carved {
			return fmt.Errorf("%s is %w: it is inside %s, which lakehoused keeps for itself (tables are read and written through SQL)", u, ErrNotAllowed, d)
		}
	}
	return nil
}

// rooted splits an allowed local path into its import directory and the relative path that
// os.Root resolves inside it, so no symlink or rename race can lead outside.
func (r *Resolver) rooted(p string) (dir, rel string) {
	dir, _ = r.importDir(p)
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		rel = "."
	}
	return dir, rel
}

// rootErr explains os.Root's refusal of a path that leaves its import directory.
func (r *Resolver) rootErr(p string, err error) error {
	if err != nil && strings.Contains(err.Error(), "escapes") {
		return fmt.Errorf("%s leads outside its import directory through a symbolic link: %w", p, r.notAllowedFile(p))
	}
	return err
}

// importDir returns the import directory p lies in (lexically).
func (r *Resolver) importDir(p string) (string, bool) {
	for _, d := range r.ImportDirs {
		d = filepath.Clean(d)
		if p == d || strings.HasPrefix(p, d+string(filepath.Separator)) {
			return d, true
		}
	}
	return "", false
}

// confine checks an existing path after resolving symlinks.
func (r *Resolver) confine(p string) error {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	for _, d := range r.ImportDirs {
		rd, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue
		}
		if real == rd || strings.HasPrefix(real, rd+string(filepath.Separator)) {
			return nil
		}
	}
	return fmt.Errorf("%s resolves to %s: %w", p, real, r.notAllowedFile(real))
}

func hasMeta(s string) bool { return strings.ContainsAny(s, "*?[{") }

// globSplit cuts a pattern at the last '/' before its first wildcard.
func globSplit(p string) (base, pattern string) {
	i := strings.IndexAny(p, "*?[{")
	if i < 0 {
		return p, ""
	}
	j := strings.LastIndexByte(p[:i], '/')
	if j < 0 {
		return "", p
	}
	return p[:j], p[j+1:]
}

// Expand lists the objects raw names: one for a plain URL (which must exist), every match
// in key order for a glob (*, ?, [..], {a,b}, and ** across directories), at least one.
func (r *Resolver) Expand(ctx context.Context, raw string) ([]Location, error) {
	scheme := "file"
	if i := strings.Index(raw, "://"); i > 0 {
		scheme = strings.ToLower(raw[:i])
	}
	switch scheme {
	case "file":
		return r.expandFile(raw)
	case "s3":
		return r.expandS3(ctx, raw)
	case "http", "https":
		return []Location{{URL: raw, Size: -1, scheme: scheme, path: raw}}, nil
	}
	return nil, fmt.Errorf("unsupported URL scheme %q in %q; use file://, s3://, http:// or https://", scheme, raw)
}

func (r *Resolver) expandFile(raw string) ([]Location, error) {
	p, err := r.localPath(raw)
	if err != nil {
		return nil, err
	}
	dir, rel := r.rooted(p)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("import directory %s: %w", dir, err)
	}
	defer root.Close()
	slashed := filepath.ToSlash(rel)
	loc := func(rel string, size int64) Location {
		full := filepath.Join(dir, filepath.FromSlash(rel))
		return Location{URL: "file://" + filepath.ToSlash(full), Size: size, scheme: "file", path: full, dir: dir, rel: filepath.FromSlash(rel)}
	}
	if !hasMeta(slashed) {
		st, err := root.Stat(rel)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("file %s does not exist", p)
			}
			return nil, r.rootErr(p, err)
		}
		if st.IsDir() {
			return nil, fmt.Errorf("%s is a directory; name a file or a glob such as %s/*.parquet", p, strings.TrimSuffix(filepath.ToSlash(p), "/"))
		}
		return []Location{loc(slashed, st.Size())}, nil
	}
	base, pattern := globSplit(slashed)
	fsys := root.FS()
	if base != "" {
		if st, err := root.Stat(base); err != nil || !st.IsDir() {
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, r.rootErr(p, err)
			}
			return nil, fmt.Errorf("no files match %s: %s is not a directory", p, filepath.Join(dir, base))
		}
		if fsys, err = fs.Sub(fsys, base); err != nil {
			return nil, err
		}
	}
	matches, err := doublestar.Glob(fsys, pattern, doublestar.WithFilesOnly(), doublestar.WithFailOnIOErrors())
	if err != nil {
		return nil, r.rootErr(p, fmt.Errorf("listing %s: %w", p, err))
	}
	slices.Sort(matches)
	var out []Location
	for _, m := range matches {
		rel := path.Join(base, m)
		st, err := root.Stat(rel)
		if err != nil {
			return nil, r.rootErr(filepath.Join(dir, rel), err)
		}
		l := loc(rel, st.Size())
		if err := r.denied(l.URL); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no files match %s", p)
	}
	return out, nil
}

// openLocal opens a file location inside its import directory.
func (r *Resolver) openLocal(l Location) (*os.File, error) {
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(l.rel)
	return f, r.rootErr(l.path, err)
}

func (r *Resolver) s3Store(ctx context.Context, bucket string) (*storage.S3, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.s3[bucket]; ok {
		return s, nil
	}
	s, err := storage.NewS3(ctx, r.S3, bucket, "")
	if err != nil {
		return nil, err
	}
	if r.s3 == nil {
		r.s3 = map[string]*storage.S3{}
	}
	r.s3[bucket] = s
	return s, nil
}

func splitS3(raw string) (bucket, key string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("malformed URL %q: %w", raw, err)
	}
	key = strings.TrimPrefix(u.Path, "/")
	if u.Host == "" || key == "" {
		return "", "", fmt.Errorf("S3 URL %q must name a bucket and a key (s3://bucket/key)", raw)
	}
	if slices.Contains(strings.Split(key, "/"), "..") {
		return "", "", fmt.Errorf("S3 URL %q may not contain '..'", raw)
	}
	return u.Host, key, nil
}

func (r *Resolver) expandS3(ctx context.Context, raw string) ([]Location, error) {
	bucket, key, err := splitS3(raw)
	if err != nil {
		return nil, err
	}
	if err := r.denied("s3://" + bucket + "/" + strings.TrimSuffix(key, "/")); err != nil {
		return nil, err
	}
	s, err := r.s3Store(ctx, bucket)
	if err != nil {
		return nil, err
	}
	if !hasMeta(key) {
		info, err := s.Stat(ctx, key)
		if err != nil {
			if errors.Is(err, storage.ErrNotExist) {
				return nil, fmt.Errorf("object %s does not exist", raw)
			}
			return nil, err
		}
		return []Location{{URL: "s3://" + bucket + "/" + key, Size: info.Size, scheme: "s3", bucket: bucket, path: key}}, nil
	}
	base, pattern := globSplit(key)
	prefix := ""
	if base != "" {
		prefix = base + "/"
	}
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []Location
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, prefix)
		if ok, _ := doublestar.Match(pattern, rel); ok {
			if err := r.denied("s3://" + bucket + "/" + o.Key); err != nil {
				return nil, err
			}
			out = append(out, Location{URL: "s3://" + bucket + "/" + o.Key, Size: o.Size, scheme: "s3", bucket: bucket, path: o.Key})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no objects match %s", raw)
	}
	return out, nil
}

// Open returns a sequential reader over the object. Reads are buffered in large requests.
func (r *Resolver) Open(ctx context.Context, l Location) (io.ReadCloser, error) {
	switch l.scheme {
	case "file":
		return r.openLocal(l)
	case "s3":
		ra, size, err := r.OpenRandom(ctx, l)
		if err != nil {
			return nil, err
		}
		return readCloser{bufio.NewReaderSize(io.NewSectionReader(ra, 0, size), 8<<20), ra}, nil
	case "http", "https":
		resp, err := r.httpGet(ctx, l.URL, "")
		if err != nil {
			return nil, err
		}
		return resp.Body, nil
	}
	return nil, fmt.Errorf("cannot open %s", l.URL)
}

type readCloser struct {
	io.Reader
	io.Closer
}

// OpenRandom returns a random-access reader over the object and its size (Parquet).
func (r *Resolver) OpenRandom(ctx context.Context, l Location) (storage.ReaderAtCloser, int64, error) {
	switch l.scheme {
	case "file":
		f, err := r.openLocal(l)
		if err != nil {
			return nil, 0, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		return f, st.Size(), nil
	case "s3":
		s, err := r.s3Store(ctx, l.bucket)
		if err != nil {
			return nil, 0, err
		}
		return s.Open(ctx, l.path)
	case "http", "https":
		resp, err := r.httpDo(ctx, http.MethodHead, l.URL, "")
		if err != nil {
			return nil, 0, err
		}
		resp.Body.Close()
		if resp.ContentLength < 0 || resp.Header.Get("Accept-Ranges") != "bytes" {
			return nil, 0, fmt.Errorf("%s: the server does not serve byte ranges, which random access (Parquet) needs", l.URL)
		}
		return &httpFile{r: r, ctx: context.WithoutCancel(ctx), url: l.URL}, resp.ContentLength, nil
	}
	return nil, 0, fmt.Errorf("cannot open %s", l.URL)
}

// Store opens a directory URL (a Delta table's root) as a store, under the same rules as
// Expand. Files inside a local table are read by path: a symbolic link planted inside the
// table's directory is not caught (the table's root is).
func (r *Resolver) Store(ctx context.Context, raw string) (storage.Store, error) {
	raw = strings.TrimSuffix(raw, "/")
	if strings.HasPrefix(raw, "s3://") {
		bucket, key, err := splitS3(raw)
		if err != nil {
			return nil, err
		}
		if err := r.denied("s3://" + bucket + "/" + key); err != nil {
			return nil, err
		}
		return storage.NewS3(ctx, r.S3, bucket, key)
	}
	if strings.Contains(raw, "://") && !strings.HasPrefix(raw, "file://") {
		return nil, fmt.Errorf("a table location must be a file:// or s3:// URL, not %q", raw)
	}
	p, err := r.localPath(raw)
	if err != nil {
		return nil, err
	}
	if err := r.confine(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("directory %s does not exist", p)
		}
		return nil, err
	}
	return storage.NewLocal(p)
}

// Write stores data as the object raw names (an export), replacing it. Local files are
// written inside their import directory through os.Root (so no symbolic link, or one swapped
// in meanwhile, leads outside), to a temporary file that is synced and renamed.
func (r *Resolver) Write(ctx context.Context, raw string, data []byte) (string, error) {
	if strings.HasPrefix(raw, "s3://") {
		bucket, key, err := splitS3(raw)
		if err != nil {
			return "", err
		}
		u := "s3://" + bucket + "/" + key
		if err := r.denied(u); err != nil {
			return "", err
		}
		s, err := r.s3Store(ctx, bucket)
		if err != nil {
			return "", err
		}
		return u, s.Put(ctx, key, data)
	}
	if strings.Contains(raw, "://") && !strings.HasPrefix(raw, "file://") {
		return "", fmt.Errorf("exports go to file:// or s3:// URLs, not %q", raw)
	}
	p, err := r.localPath(raw)
	if err != nil {
		return "", err
	}
	if hasMeta(filepath.ToSlash(p)) {
		return "", fmt.Errorf("an export URL may not contain wildcards: %s", p)
	}
	dir, rel := r.rooted(p)
	if rel == "." {
		return "", fmt.Errorf("%s is an import directory; name a file inside it", p)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("import directory %s: %w", dir, err)
	}
	defer root.Close()
	if err := root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return "", r.rootErr(p, err)
	}
	if st, err := root.Lstat(rel); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		return "", fmt.Errorf("%s is a symbolic link; exports do not write through links", p)
	}
	tmp := rel + ".tmp-export"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", r.rootErr(p, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, rel)
	}
	if err != nil {
		root.Remove(tmp)
		return "", r.rootErr(p, err)
	}
	if d, err := root.Open(filepath.Dir(rel)); err == nil {
		d.Sync()
		d.Close()
	}
	return "file://" + filepath.ToSlash(p), nil
}

// Remove deletes the objects under the folder URL raw whose names match pattern (a glob
// over names, not paths): an export's parts from an earlier run.
func (r *Resolver) Remove(ctx context.Context, raw, pattern string) error {
	if strings.HasPrefix(raw, "s3://") {
		bucket, key, err := splitS3(raw + "/x")
		if err != nil {
			return err
		}
		prefix := strings.TrimSuffix(key, "x")
		if err := r.denied("s3://" + bucket + "/" + strings.TrimSuffix(prefix, "/")); err != nil {
			return err
		}
		s, err := r.s3Store(ctx, bucket)
		if err != nil {
			return err
		}
		objs, err := s.List(ctx, prefix)
		if err != nil {
			return err
		}
		for _, o := range objs {
			name := strings.TrimPrefix(o.Key, prefix)
			if ok, _ := path.Match(pattern, name); ok && !strings.Contains(name, "/") {
				if err := s.Delete(ctx, o.Key); err != nil {
					return err
				}
			}
		}
		return nil
	}
	p, err := r.localPath(raw)
	if err != nil {
		return err
	}
	dir, rel := r.rooted(p)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	f, err := root.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return r.rootErr(p, err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil // not a directory: nothing of ours is in it
	}
	for _, n := range names {
		if ok, _ := path.Match(pattern, n); ok {
			if err := root.Remove(filepath.Join(rel, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// --- HTTP ---

func (r *Resolver) httpClient() *http.Client {
	r.once.Do(func() {
		timeout := r.HTTPTimeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		d := &net.Dialer{Timeout: timeout}
		if !r.AllowPrivateHTTP {
			d.Control = refusePrivate
		}
		r.client = &http.Client{Transport: &http.Transport{
			DialContext:           d.DialContext,
			ResponseHeaderTimeout: timeout,
			TLSHandshakeTimeout:   timeout,
			MaxIdleConnsPerHost:   8,
		}}
	})
	return r.client
}

// refusePrivate runs on the resolved address of every connection (redirects included).
func refusePrivate(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || inSpecialRange(ip) {
		return fmt.Errorf("connecting to %s is %w: it is a loopback, private or link-local address (start the server with --allow-private-http to allow it)", host, ErrNotAllowed)
	}
	return nil
}

// specialRanges are non-public ranges net.IP's predicates miss: shared address space (cloud
// metadata services live there), "this network", IETF protocol assignments, benchmarking,
// and the IPv6 prefixes that embed an IPv4 address (NAT64, 6to4), which could carry a
// loopback or metadata address.
var specialRanges = func() []*net.IPNet {
	var out []*net.IPNet
	for _, c := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16"} {
		_, n, _ := net.ParseCIDR(c)
		out = append(out, n)
	}
	return out
}()

func inSpecialRange(ip net.IP) bool {
	for _, n := range specialRanges {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func (r *Resolver) httpDo(ctx context.Context, method, u, rng string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("malformed URL %q: %w", u, err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := r.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	if resp.StatusCode >= 300 {
		resp.Body.Close()
		return nil, fmt.Errorf("fetching %s: the server answered %s", u, resp.Status)
	}
	return resp, nil
}

func (r *Resolver) httpGet(ctx context.Context, u, rng string) (*http.Response, error) {
	return r.httpDo(ctx, http.MethodGet, u, rng)
}

type httpFile struct {
	r   *Resolver
	ctx context.Context
	url string
}

func (f *httpFile) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	resp, err := f.r.httpGet(f.ctx, f.url, fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return 0, fmt.Errorf("%s: asked for a byte range, got %s", f.url, resp.Status)
	}
	n, err := io.ReadFull(resp.Body, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

func (f *httpFile) Close() error { return nil }
