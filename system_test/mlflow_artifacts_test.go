package system_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lakehoused/lakehoused/internal/s3test"
	"github.com/lakehoused/lakehoused/server"
	"github.com/lakehoused/lakehoused/storage"
)

// mlflowClient calls the REST API the way MLflow's clients do, checking statuses.
type mlflowClient struct {
	t    *testing.T
	base string
}

func (c mlflowClient) do(method, path string, body any, wantStatus int) map[string]any {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s: not JSON: %s", method, path, raw)
	}
	if resp.StatusCode != wantStatus {
		c.t.Fatalf("%s %s: status %d (%s), want %d", method, path, resp.StatusCode, raw, wantStatus)
	}
	return out
}

// TestMLflowExperiments: experiments/search with filters, ordering and paging; tags;
// rename; soft delete and restore taking the experiment's runs along.
func TestMLflowExperiments(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	c := mlflowClient{t, "http://" + n.srv.HTTPAddr() + "/api/2.0/mlflow/"}
	ids := map[string]string{}
	for _, name := range []string{"exp-a", "exp-b", "other"} {
		ids[name] = c.do("POST", "experiments/create", map[string]any{"name": name}, 200)["experiment_id"].(string)
	}
	c.do("POST", "experiments/set-experiment-tag", map[string]any{"experiment_id": ids["exp-a"], "key": "team", "value": "risk"}, 200)
	c.do("POST", "experiments/set-experiment-tag", map[string]any{"experiment_id": ids["other"], "key": "team", "value": "growth"}, 200)
	if e := c.do("POST", "experiments/set-experiment-tag", map[string]any{"experiment_id": "999", "key": "team", "value": "x"}, 404); e["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
		t.Fatalf("tag on a missing experiment: %v", e)
	}
	names := func(out map[string]any) string {
		var s []string
		list, _ := out["experiments"].([]any)
		for _, e := range list {
			s = append(s, e.(map[string]any)["name"].(string))
		}
		return strings.Join(s, ",")
	}
	for filter, want := range map[string]string{
		"name LIKE 'exp-%'":                                  "exp-a,exp-b",
		"attributes.name = 'other'":                          "other",
		"tags.team = 'risk'":                                 "exp-a",
		"tags.team != 'risk'":                                "other",
		"attribute.creation_time > 0 and name ILIKE 'EXP-B'": "exp-b",
	} {
		got := names(c.do("POST", "experiments/search", map[string]any{"filter": filter, "order_by": []string{"name ASC"}}, 200))
		if got != want {
			t.Errorf("experiments/search %q: %s, want %s", filter, got, want)
		}
	}
	got := c.do("POST", "experiments/search", map[string]any{"filter": "tags.team = 'risk'"}, 200)["experiments"].([]any)[0].(map[string]any)
	if tags := got["tags"].([]any); len(tags) != 1 || tags[0].(map[string]any)["value"] != "risk" {
		t.Fatalf("experiment tags: %v", got)
	}
	// Paging through all four (Default too), by name.
	var seen []string
	body := map[string]any{"max_results": 3, "order_by": []string{"name DESC"}}
	for {
		out := c.do("POST", "experiments/search", body, 200)
		seen = append(seen, names(out))
		tok, ok := out["next_page_token"].(string)
		if !ok {
			break
		}
		body["page_token"] = tok
	}
	if strings.Join(seen, "|") != "other,exp-b,exp-a|Default" {
		t.Fatalf("paged search: %v", seen)
	}
	for _, bad := range []map[string]any{
		{"filter": "name LIKE"},
		{"filter": "metrics.acc > 1"},
		{"order_by": []string{"tags.team"}},
		{"view_type": "SOME"},
		{"max_results": 0},
		{"page_token": "garbage"},
	} {
		if e := c.do("POST", "experiments/search", bad, 400); e["error_code"] != "INVALID_PARAMETER_VALUE" {
			t.Fatalf("experiments/search %v: %v", bad, e)
		}
	}

	// Rename; a taken name is refused.
	c.do("POST", "experiments/update", map[string]any{"experiment_id": ids["exp-b"], "new_name": "exp-b2"}, 200)
	if e := c.do("POST", "experiments/update", map[string]any{"experiment_id": ids["exp-b"], "new_name": "exp-a"}, 400); e["error_code"] != "RESOURCE_ALREADY_EXISTS" {
		t.Fatalf("rename onto a taken name: %v", e)
	}
	if got := c.do("GET", "experiments/get?experiment_id="+ids["exp-b"], nil, 200)["experiment"].(map[string]any); got["name"] != "exp-b2" {
		t.Fatalf("after rename: %v", got)
	}

	// Deleting takes the runs along; restoring brings them back.
	run := c.do("POST", "runs/create", map[string]any{"experiment_id": ids["exp-a"], "run_name": "r"}, 200)["run"].(map[string]any)["info"].(map[string]any)
	runID := run["run_id"].(string)
	c.do("POST", "experiments/delete", map[string]any{"experiment_id": ids["exp-a"]}, 200)
	if st := c.do("GET", "experiments/get?experiment_id="+ids["exp-a"], nil, 200)["experiment"].(map[string]any)["lifecycle_stage"]; st != "deleted" {
		t.Fatalf("experiment after delete: %v", st)
	}
	if st := c.do("GET", "runs/get?run_id="+runID, nil, 200)["run"].(map[string]any)["info"].(map[string]any)["lifecycle_stage"]; st != "deleted" {
		t.Fatalf("run of a deleted experiment: %v", st)
	}
	if got := names(c.do("POST", "experiments/search", map[string]any{"filter": "name LIKE 'exp-%'"}, 200)); got != "exp-b2" {
		t.Fatalf("active experiments after delete: %s", got)
	}
	if got := names(c.do("POST", "experiments/search", map[string]any{"view_type": "DELETED_ONLY"}, 200)); got != "exp-a" {
		t.Fatalf("deleted experiments: %s", got)
	}
	if e := c.do("POST", "runs/create", map[string]any{"experiment_id": ids["exp-a"]}, 400); e["error_code"] != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("a run in a deleted experiment: %v", e)
	}
	c.do("POST", "experiments/restore", map[string]any{"experiment_id": ids["exp-a"]}, 200)
	if st := c.do("GET", "runs/get?run_id="+runID, nil, 200)["run"].(map[string]any)["info"].(map[string]any)["lifecycle_stage"]; st != "active" {
		t.Fatalf("run after restoring its experiment: %v", st)
	}
	if e := c.do("POST", "experiments/delete", map[string]any{"experiment_id": "0"}, 400); e["error_code"] != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("deleting Default: %v", e)
	}
	if e := c.do("POST", "experiments/delete", map[string]any{"experiment_id": "999"}, 404); e["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
		t.Fatalf("deleting a missing experiment: %v", e)
	}
}

// TestMLflowArtifacts: a run's artifact_uri points at this server, and files put there are
// listed, downloaded and deleted as MLflow's artifact proxy does; paths cannot leave the
// artifact root.
func TestMLflowArtifacts(t *testing.T) {
	t.Parallel()
	t.Run("local", func(t *testing.T) { t.Parallel(); testArtifacts(t, startNode(t, "")) })
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		// With the disk tier of the read cache on: artifacts are rewritten and deleted, and
		// must never be served from it afterwards.
		g := s3test.Start(t)
		testArtifacts(t, startNodeWith(t, "", func(c *server.Config) {
			c.Warehouse = "s3://" + g.Bucket + "/wh"
			c.S3 = storage.S3Config{Endpoint: g.Endpoint, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Region: "us-east-1"}
			c.S3DiskCacheBytes = 64 << 20
		}))
	})
}

func testArtifacts(t *testing.T, n *node) {
	base := "http://" + n.srv.HTTPAddr()
	c := mlflowClient{t, base + "/api/2.0/mlflow/"}
	expID := c.do("POST", "experiments/create", map[string]any{"name": "arts"}, 200)["experiment_id"].(string)
	if loc := c.do("GET", "experiments/get?experiment_id="+expID, nil, 200)["experiment"].(map[string]any)["artifact_location"]; loc != "mlflow-artifacts:/"+expID {
		t.Fatalf("artifact_location %v", loc)
	}
	info := c.do("POST", "runs/create", map[string]any{"experiment_id": expID}, 200)["run"].(map[string]any)["info"].(map[string]any)
	runID := info["run_id"].(string)
	root := fmt.Sprintf("%s/%s/artifacts", expID, runID)
	if info["artifact_uri"] != "mlflow-artifacts:/"+root {
		t.Fatalf("artifact_uri %v", info["artifact_uri"])
	}
	arts := base + "/api/2.0/mlflow-artifacts/artifacts/"
	files := map[string][]byte{
		"model/MLmodel":       []byte("flavors: {}\n"),
		"model/model.pkl":     bytes.Repeat([]byte{0, 1, 2, 3}, 50000),
		"plots/roc.png":       []byte("\x89PNG fake"),
		"requirements.txt":    []byte("numpy\n"),
		"model/nested/a.json": []byte(`{"a":1}`),
	}
	for p, data := range files {
		put(t, arts+root+"/"+p, data, 200)
	}
	for p, data := range files {
		resp, err := http.Get(arts + root + "/" + p)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Fatalf("GET %s: %d, %d bytes, want %d", p, resp.StatusCode, len(got), len(data))
		}
	}
	a := mlflowClient{t, base + "/api/2.0/mlflow-artifacts/"}
	list := func(out map[string]any) string {
		var s []string
		for _, f := range out["files"].([]any) {
			m := f.(map[string]any)
			e := m["path"].(string)
			if m["is_dir"] == true {
				e += "/"
			} else {
				e += fmt.Sprintf("(%v)", m["file_size"])
			}
			s = append(s, e)
		}
		return strings.Join(s, " ")
	}
	if got := list(a.do("GET", "artifacts?path="+url.QueryEscape(root), nil, 200)); got != "model/ plots/ requirements.txt(6)" {
		t.Fatalf("artifact list of the run root: %s", got)
	}
	if got := list(a.do("GET", "artifacts?path="+url.QueryEscape(root+"/model"), nil, 200)); got != "MLmodel(12) model.pkl(200000) nested/" {
		t.Fatalf("artifact list of model/: %s", got)
	}
	// The tracking API's listing is relative to the run's root.
	out := c.do("GET", "artifacts/list?run_id="+runID+"&path=model", nil, 200)
	if out["root_uri"] != "mlflow-artifacts:/"+root || list(out) != "model/MLmodel(12) model/model.pkl(200000) model/nested/" {
		t.Fatalf("artifacts/list: %v", out)
	}
	// Deleting a folder takes what is below it.
	a.do("DELETE", "artifacts/"+root+"/model", nil, 200)
	if got := list(a.do("GET", "artifacts?path="+url.QueryEscape(root), nil, 200)); got != "plots/ requirements.txt(6)" {
		t.Fatalf("after deleting model/: %s", got)
	}
	if e := a.do("GET", "artifacts/"+root+"/model/MLmodel", nil, 404); e["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
		t.Fatalf("a deleted artifact: %v", e)
	}
	// Paths that would leave the artifact root are refused.
	for _, bad := range []string{"artifacts?path=" + url.QueryEscape("../_lakehouse"), "artifacts?path=" + url.QueryEscape("a//b"),
		"artifacts/" + root + "/a%5C..%5C..%5Cx", "artifacts/" + root + "/%2E%2E/%2E%2E/x"} {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/2.0/mlflow-artifacts/"+bad, nil)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("GET %s was served", bad)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, arts+root+"/x%5C..%5Cy", strings.NewReader("x"))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("PUT with backslashes: %d, want 400", resp.StatusCode)
	}
	if e := c.do("GET", "artifacts/list?run_id=nope", nil, 404); e["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
		t.Fatalf("artifacts of a missing run: %v", e)
	}

	// Overwriting and deleting are seen at once (no cache serves the old bytes).
	get := func(p string) (int, http.Header, string) {
		t.Helper()
		resp, err := http.Get(arts + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	for _, v := range []string{"version-1", "version-2"} {
		put(t, arts+root+"/table.parquet", []byte(v), 200)
		if st, _, body := get(root + "/table.parquet"); st != 200 || body != v {
			t.Fatalf("after writing %s: %d %q", v, st, body)
		}
	}
	a.do("DELETE", "artifacts/"+root+"/table.parquet", nil, 200)
	if st, _, _ := get(root + "/table.parquet"); st != 404 {
		t.Fatalf("a deleted artifact is still served: %d", st)
	}

	// Files that a browser would run are downloads, in a sandbox; inert ones are shown.
	for name, want := range map[string]string{"page.html": "application/octet-stream", "x.xml": "application/octet-stream",
		"x.xhtml": "application/octet-stream", "pic.svg": "application/octet-stream", "plots/roc.png": "image/png"} {
		if name != "plots/roc.png" {
			put(t, arts+root+"/"+name, []byte(`<html><script>window.pwned=1</script></html>`), 200)
		}
		st, h, _ := get(root + "/" + name)
		if st != 200 || h.Get("Content-Type") != want || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") ||
			h.Get("X-Content-Type-Options") != "nosniff" || (want == "application/octet-stream") != strings.HasPrefix(h.Get("Content-Disposition"), "attachment") {
			t.Fatalf("GET %s: %d %v", name, st, h)
		}
	}
	// Ranges, as large downloads resume.
	req, _ = http.NewRequest(http.MethodGet, arts+root+"/requirements.txt", nil)
	req.Header.Set("Range", "bytes=0-3")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(part) != "nump" {
		t.Fatalf("range GET: %d %q", resp.StatusCode, part)
	}

	// Paths that collide with folders or files, or use reserved names: 4xx, never the
	// server's own paths in the message.
	if e := a.do("GET", "artifacts/"+root+"/plots", nil, 404); e["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
		t.Fatalf("GET of a folder: %v", e)
	}
	for _, bad := range []string{root + "/requirements.txt/below", root + "/.tmp-x"} {
		req, _ := http.NewRequest(http.MethodPut, arts+bad, strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || strings.Contains(string(body), n.dir) {
			t.Fatalf("PUT %s: %d %s", bad, resp.StatusCode, body)
		}
	}
}

// TestMLflowRefusesCrossSiteWrites: a browser page of another site cannot change anything
// through the API (CSRF); MLflow's clients, which send no Origin, and same-origin pages can.
func TestMLflowRefusesCrossSiteWrites(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	base := "http://" + n.srv.HTTPAddr()
	post := func(headers map[string]string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/2.0/mlflow/experiments/create", strings.NewReader(`{"name": "x`+fmt.Sprint(len(headers))+`"}`))
		req.Header.Set("Content-Type", "text/plain")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, h := range []map[string]string{{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}} {
		if st, body := post(h); st != 403 || !strings.Contains(body, "PERMISSION_DENIED") {
			t.Fatalf("cross-site POST with %v: %d %s", h, st, body)
		}
	}
	if st, body := post(map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin", "X": "1"}); st != 200 {
		t.Fatalf("same-origin POST: %d %s", st, body)
	}
	if st, body := post(nil); st != 200 {
		t.Fatalf("POST from a client without Origin: %d %s", st, body)
	}
	// GET lists repeat their parameter.
	c := mlflowClient{t, base + "/api/2.0/mlflow/"}
	out := c.do("GET", "experiments/search?order_by=name+DESC&max_results=2", nil, 200)
	if list := out["experiments"].([]any); len(list) != 2 || list[0].(map[string]any)["name"] != "x3" {
		t.Fatalf("GET experiments/search ordered by name DESC: %v", out)
	}
}
