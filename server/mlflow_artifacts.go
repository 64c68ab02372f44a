package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"

	lakesql "github.com/lakehoused/lakehoused/sql"
	"github.com/lakehoused/lakehoused/storage"
)

// MLflow's artifact proxy (/api/2.0/mlflow-artifacts/artifacts/<path>): runs whose
// artifact_uri is mlflow-artifacts:/<experiment>/<run>/artifacts send their files here, and
// the daemon keeps them in the warehouse under _artifacts/ (a folder no table uses: Delta
// readers skip names starting with "_"), on local disk or S3 alike.

const (
	artifactPrefix = "_artifacts/"
	// maxArtifactBytes bounds one upload, which is held in memory on its way to storage.
	maxArtifactBytes = 1 << 30
)

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
	fail := func(w http.ResponseWriter, err error) {
		if errors.Is(err, storage.ErrNotExist) {
			err = &mlflowError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", err.Error()}
		}
		writeMLflowError(w, err)
	}
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
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxArtifactBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				fail(w, &mlflowError{http.StatusRequestEntityTooLarge, "INVALID_PARAMETER_VALUE",
					fmt.Sprintf("artifact %q is larger than %d bytes", ap, int64(maxArtifactBytes))})
				return
			}
			fail(w, badRequest("reading artifact %q: %v", ap, err))
			return
		}
		if err := m.s.warehouse.Put(r.Context(), artifactPrefix+ap, data); err != nil {
			fail(w, err)
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
			fail(w, err)
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
				fail(w, err)
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

// serveArtifact writes one stored artifact.
func (m *mlflowAPI) serveArtifact(w http.ResponseWriter, r *http.Request, ap string) {
	data, err := m.s.warehouse.Get(r.Context(), artifactPrefix+ap)
	if err != nil {
		if errors.Is(err, storage.ErrNotExist) {
			err = &mlflowError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("artifact %q does not exist", ap)}
		}
		writeMLflowError(w, err)
		return
	}
	ct := mime.TypeByExtension(path.Ext(ap))
	if ct == "" || strings.HasPrefix(ct, "text/html") || strings.Contains(ct, "javascript") || strings.Contains(ct, "svg") {
		// Never let a logged file run as a page of this origin.
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
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
	rest, ok := strings.CutPrefix(uri, lakesql.ArtifactScheme)
	if !ok {
		return "", uri, badRequest("run '%s' keeps its artifacts at %s, which this server does not serve", runID, uri)
	}
	root, err := artifactPath(rest, false)
	return root, uri, err
}
