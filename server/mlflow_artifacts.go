package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	lakesql "github.com/lakehoused/lakehoused/sql"
	"github.com/lakehoused/lakehoused/storage"
)

// MLflow's artifact proxy (/api/2.0/mlflow-artifacts/artifacts/<path>): runs whose
// artifact_uri is mlflow-artifacts:/<experiment>/<run>/artifacts send their files here, and
// the daemon keeps them in the warehouse under _artifacts/ (a folder no table uses: Delta
// readers skip names starting with "_"), on local disk or S3 alike.

const (
	artifactPrefix = "_artifacts/"
	// maxArtifactBytes bounds one upload, which is held in memory on its way to storage
	// (storage.Store takes whole objects); at most maxUploads are read at once, so uploads
	// hold at most 1 GiB between them.
	maxArtifactBytes = 512 << 20
	maxUploads       = 2
)

// uploads limits the artifact uploads held in memory at once.
var uploads = make(chan struct{}, maxUploads)

// inlineTypes are the content types an artifact is served with as such: ones a browser
// shows but never runs. Everything else goes as application/octet-stream, to download.
var inlineTypes = map[string]string{
	".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
	".txt": "text/plain; charset=utf-8", ".log": "text/plain; charset=utf-8", ".csv": "text/plain; charset=utf-8",
	".json": "application/json", ".yaml": "text/plain; charset=utf-8", ".yml": "text/plain; charset=utf-8",
	".md": "text/plain; charset=utf-8", ".py": "text/plain; charset=utf-8", ".pdf": "application/pdf",
}

// artifactPath checks a path relative to the artifact root: no empty, "." or ".."
// segments, no backslashes or NULs, so a request never leaves _artifacts/.
func artifactPath(p string, allowEmpty bool) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		if allowEmpty {
			return "", nil
		}
		return "", badRequest("an artifact path is required")
	}
	if strings.ContainsAny(p, "\\\x00") {
		return "", badRequest("invalid artifact path %q: backslashes and NUL are not allowed", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", badRequest("invalid artifact path %q: empty, '.' and '..' segments are not allowed", p)
		}
		if strings.HasPrefix(seg, storage.TempPrefix) {
			return "", badRequest("invalid artifact path %q: names starting with %q are reserved", p, storage.TempPrefix)
		}
	}
	return p, nil
}

// artifactInfo is MLflow's FileInfo.
type artifactInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize *int64 `json:"file_size,omitempty"`
}

// listArtifacts lists the direct children of dir (relative to the artifact root); names
// are relative to base.
func (m *mlflowAPI) listArtifacts(ctx context.Context, dir, base string) ([]artifactInfo, error) {
	prefix := artifactPrefix
	if dir != "" {
		prefix += dir + "/"
	}
	objs, err := m.s.warehouse.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := []artifactInfo{}
	for _, o := range objs {
		rest := strings.TrimPrefix(o.Key, prefix)
		name, _, isDir := strings.Cut(rest, "/")
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		fi := artifactInfo{Path: path.Join(base, name), IsDir: isDir}
		if !isDir {
			size := o.Size
			fi.FileSize = &size
		}
		out = append(out, fi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (m *mlflowAPI) artifactRoutes(mux *http.ServeMux) {
	const p = "/api/2.0/mlflow-artifacts/artifacts"
	fail := func(w http.ResponseWriter, err error) { m.artifactError(w, "", err) }
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("PUT "+p+"/{path...}", func(w http.ResponseWriter, r *http.Request) {
		ap, err := artifactPath(r.PathValue("path"), false)
		if err != nil {
			fail(w, err)
			return
		}
		if r.ContentLength > maxArtifactBytes {
			fail(w, tooLarge(ap))
			return
		}
		select {
		case uploads <- struct{}{}:
			defer func() { <-uploads }()
		case <-r.Context().Done():
			return
		}
		var data []byte
		if r.ContentLength > 0 {
			data = make([]byte, r.ContentLength)
			_, err = io.ReadFull(r.Body, data)
		} else {
			data, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxArtifactBytes))
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				fail(w, tooLarge(ap))
				return
			}
			fail(w, badRequest("reading artifact %q: %v", ap, err))
			return
		}
		if err := m.pathFree(r.Context(), ap); err != nil {
			m.artifactError(w, ap, err)
			return
		}
		if err := m.s.warehouse.Put(r.Context(), artifactPrefix+ap, data); err != nil {
			m.artifactError(w, ap, err)
			return
		}
		writeJSON(w, map[string]any{})
	})
	mux.HandleFunc("GET "+p+"/{path...}", func(w http.ResponseWriter, r *http.Request) {
		ap, err := artifactPath(r.PathValue("path"), false)
		if err != nil {
			fail(w, err)
			return
		}
		m.serveArtifact(w, r, ap)
	})
	mux.HandleFunc("DELETE "+p+"/{path...}", func(w http.ResponseWriter, r *http.Request) {
		ap, err := artifactPath(r.PathValue("path"), false)
		if err != nil {
			fail(w, err)
			return
		}
		// A directory goes with everything below it, as in MLflow.
		objs, err := m.s.warehouse.List(r.Context(), artifactPrefix+ap+"/")
		if err != nil {
			m.artifactError(w, ap, err)
			return
		}
		keys := []string{artifactPrefix + ap}
		if len(objs) > 0 {
			keys = keys[:0]
			for _, o := range objs {
				keys = append(keys, o.Key)
			}
		}
		for _, k := range keys {
			if err := m.s.warehouse.Delete(r.Context(), k); err != nil {
				m.artifactError(w, ap, err)
				return
			}
		}
		writeJSON(w, map[string]any{})
	})
	mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
		dir, err := artifactPath(r.URL.Query().Get("path"), true)
		if err != nil {
			fail(w, err)
			return
		}
		files, err := m.listArtifacts(r.Context(), dir, "")
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, map[string]any{"files": files})
	})
	// The tracking API's listing of one run's artifacts, as MLflow's UI and older clients
	// ask for it: paths relative to the run's artifact root.
	mux.HandleFunc("GET /api/2.0/mlflow/artifacts/list", func(w http.ResponseWriter, r *http.Request) {
		runID := r.URL.Query().Get("run_id")
		if runID == "" {
			runID = r.URL.Query().Get("run_uuid")
		}
		sub, err := artifactPath(r.URL.Query().Get("path"), true)
		if err != nil {
			fail(w, err)
			return
		}
		root, uri, err := m.runArtifactRoot(r, runID)
		if err != nil {
			fail(w, err)
			return
		}
		files, err := m.listArtifacts(r.Context(), path.Join(root, sub), sub)
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, map[string]any{"root_uri": uri, "files": files})
	})
}

// serveArtifact streams one stored artifact (with Range support). Only inert types are
// served as themselves; the rest download as octet streams, with a sandboxing CSP, so a
// logged HTML, SVG or XML file never runs as a page of this origin.
func (m *mlflowAPI) serveArtifact(w http.ResponseWriter, r *http.Request, ap string) {
	f, size, err := m.s.warehouse.Open(r.Context(), artifactPrefix+ap)
	if err != nil {
		m.artifactError(w, ap, err)
		return
	}
	defer f.Close()
	h := w.Header()
	ct, inline := inlineTypes[strings.ToLower(path.Ext(ap))]
	if !inline {
		ct = "application/octet-stream"
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(ap)}))
	}
	h.Set("Content-Type", ct)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(f, 0, size))
}

// pathFree checks that a file can be written at ap: no folder there and no file where one
// of its folders would be. An object store would take both, a filesystem neither; artifacts
// behave the same on both, as on MLflow's local store.
func (m *mlflowAPI) pathFree(ctx context.Context, ap string) error {
	segs := strings.Split(ap, "/")
	for i := 1; i < len(segs); i++ {
		parent := strings.Join(segs[:i], "/")
		if _, err := m.s.warehouse.Stat(ctx, artifactPrefix+parent); err == nil {
			return badRequest("artifact path %q is taken: %q is a file, not a folder", ap, parent)
		} else if !errors.Is(err, storage.ErrNotExist) {
			return err
		}
	}
	below, err := m.s.warehouse.List(ctx, artifactPrefix+ap+"/")
	if err != nil {
		return err
	}
	if len(below) > 0 {
		return badRequest("artifact path %q is taken: it is a folder", ap)
	}
	return nil
}

func tooLarge(ap string) error {
	return &mlflowError{http.StatusRequestEntityTooLarge, "INVALID_PARAMETER_VALUE",
		fmt.Sprintf("artifact %q is larger than %d bytes", ap, int64(maxArtifactBytes))}
}

// artifactError answers a failed artifact operation: a missing object is 404; a path that
// collides with a folder or a file (a file where a folder is, or below a file) is 400; other
// storage failures are logged with their detail and answered without it, since it names
// the server's paths.
func (m *mlflowAPI) artifactError(w http.ResponseWriter, ap string, err error) {
	var me *mlflowError
	switch {
	case errors.As(err, &me):
	case errors.Is(err, storage.ErrNotExist) || errors.Is(err, fs.ErrNotExist):
		err = &mlflowError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("artifact %q does not exist", ap)}
	case errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, storage.ErrExist):
		err = badRequest("artifact path %q is taken: a folder and a file cannot share a name", ap)
	default:
		m.s.cfg.Logger.Error("artifact storage failed", "path", ap, "err", err)
		err = &mlflowError{http.StatusInternalServerError, "INTERNAL_ERROR", fmt.Sprintf("storing or reading artifact %q failed; the server log has the cause", ap)}
	}
	writeMLflowError(w, err)
}

// runArtifactRoot is the artifact-root-relative folder of a run's artifacts, with its URI.
func (m *mlflowAPI) runArtifactRoot(r *http.Request, runID string) (string, string, error) {
	if runID == "" {
		return "", "", badRequest("missing value for required parameter 'run_id'")
	}
	if err := m.ensure(r); err != nil {
		return "", "", err
	}
	_, rows, err := m.query(r, "SELECT artifact_uri FROM ml.runs WHERE run_id = "+lakesql.SQLString(runID))
	if err != nil {
		return "", "", err
	}
	if len(rows) == 0 {
		return "", "", &mlflowError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("run '%s' not found", runID)}
	}
	uri := fmt.Sprint(rows[0][0])
	root, ok := servedArtifactRoot(uri)
	if !ok {
		return "", uri, badRequest("run '%s' keeps its artifacts at %s, which this server does not serve", runID, uri)
	}
	return root, uri, nil
}

// servedArtifactRoot is the artifact-root-relative folder of an artifact URI this server
// serves (mlflow-artifacts:/…), or false.
func servedArtifactRoot(uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, lakesql.ArtifactScheme)
	if !ok {
		return "", false
	}
	root, err := artifactPath(rest, false)
	return root, err == nil
}
