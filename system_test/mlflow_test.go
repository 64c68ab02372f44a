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
)

// TestMLflowRESTSession replays what MLflow's Python client does for a typical tracking
// session, over HTTP, and checks the responses' shapes and error codes.
func TestMLflowRESTSession(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	base := "http://" + n.srv.HTTPAddr() + "/api/2.0/mlflow/"
	do := mlflowClient{t, base}.do
	exp := do("POST", "experiments/create", map[string]any{"name": "rest-exp"}, 200)
	expID, _ := exp["experiment_id"].(string)
	if expID == "" {
		t.Fatalf("experiments/create: %v", exp)
	}
	if e := do("POST", "experiments/create", map[string]any{"name": "rest-exp"}, 400); e["error_code"] != "RESOURCE_ALREADY_EXISTS" {
		t.Fatalf("duplicate experiment: %v", e)
	}
	got := do("GET", "experiments/get-by-name?experiment_name=rest-exp", nil, 200)["experiment"].(map[string]any)
	if got["experiment_id"] != expID || got["lifecycle_stage"] != "active" {
		t.Fatalf("experiments/get-by-name: %v", got)
	}
	if e := do("GET", "experiments/get?experiment_id=999", nil, 404); e["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
		t.Fatalf("missing experiment: %v", e)
	}
	if list := do("POST", "experiments/search", map[string]any{"max_results": 10}, 200)["experiments"].([]any); len(list) != 2 {
		t.Fatalf("experiments/search: %d experiments, want Default and rest-exp", len(list))
	}

	run := do("POST", "runs/create", map[string]any{"experiment_id": expID, "run_name": "r1", "start_time": 1700000000000,
		"tags": []any{map[string]any{"key": "mlflow.user", "value": "ada"}}}, 200)["run"].(map[string]any)
	info := run["info"].(map[string]any)
	runID := info["run_id"].(string)
	if info["status"] != "RUNNING" || info["experiment_id"] != expID || info["run_name"] != "r1" {
		t.Fatalf("runs/create: %v", info)
	}
	do("POST", "runs/log-parameter", map[string]any{"run_id": runID, "key": "lr", "value": "0.01"}, 200)
	if e := do("POST", "runs/log-parameter", map[string]any{"run_id": runID, "key": "lr", "value": "0.1"}, 400); e["error_code"] != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("changed param: %v", e)
	}
	for step := 0; step < 100; step++ {
		do("POST", "runs/log-metric", map[string]any{"run_id": runID, "key": "loss", "value": 1.0 / float64(step+1), "timestamp": 1700000000000 + step, "step": step}, 200)
	}
	do("POST", "runs/set-tag", map[string]any{"run_id": runID, "key": "stage", "value": "dev"}, 200)
	do("POST", "runs/log-batch", map[string]any{"run_id": runID, "metrics": []any{map[string]any{"key": "acc", "value": 0.9, "timestamp": 1700000000500, "step": 5}},
		"params": []any{map[string]any{"key": "depth", "value": "4"}}, "tags": []any{}}, 200)
	do("POST", "runs/update", map[string]any{"run_id": runID, "status": "FINISHED", "end_time": 1700000009999}, 200)

	full := do("GET", "runs/get?run_id="+url.QueryEscape(runID), nil, 200)["run"].(map[string]any)
	if st := full["info"].(map[string]any)["status"]; st != "FINISHED" {
		t.Fatalf("status after update: %v", st)
	}
	data := full["data"].(map[string]any)
	if p := data["params"].([]any); len(p) != 2 {
		t.Fatalf("params: %v", p)
	}
	if tags := data["tags"].([]any); len(tags) != 2 {
		t.Fatalf("tags: %v", tags)
	}
	var loss map[string]any
	for _, m := range data["metrics"].([]any) {
		if m.(map[string]any)["key"] == "loss" {
			loss = m.(map[string]any)
		}
	}
	if loss == nil || fmt.Sprint(loss["step"]) != "99" || fmt.Sprint(loss["value"]) != "0.01" {
		t.Fatalf("latest loss: %v", loss)
	}
	hist := do("GET", "metrics/get-history?run_id="+runID+"&metric_key=loss", nil, 200)["metrics"].([]any)
	if len(hist) != 100 || fmt.Sprint(hist[0].(map[string]any)["value"]) != "1" || fmt.Sprint(hist[99].(map[string]any)["step"]) != "99" {
		t.Fatalf("metrics/get-history: %d points, first %v", len(hist), hist[0])
	}
	if e := do("POST", "runs/log-metric", map[string]any{"run_id": runID, "key": "loss", "value": 1, "step": 100}, 400); e["error_code"] != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("logging to a finished run: %v", e)
	}
	if e := do("GET", "runs/get?run_id=nope", nil, 404); e["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
		t.Fatalf("missing run: %v", e)
	}
	if e := do("POST", "runs/log-metric", map[string]any{"run_id": runID}, 400); e["error_code"] != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("missing key: %v", e)
	}
	// The registry: a model, two versions from the run, an alias that moves.
	rm := do("POST", "registered-models/create", map[string]any{"name": "churn", "description": "first"}, 200)["registered_model"].(map[string]any)
	if rm["name"] != "churn" || rm["description"] != "first" {
		t.Fatalf("registered-models/create: %v", rm)
	}
	if e := do("POST", "registered-models/create", map[string]any{"name": "churn"}, 400); e["error_code"] != "RESOURCE_ALREADY_EXISTS" {
		t.Fatalf("duplicate model: %v", e)
	}
	v1 := do("POST", "model-versions/create", map[string]any{"name": "churn", "source": "runs:/" + runID + "/model", "run_id": runID}, 200)["model_version"].(map[string]any)
	v2 := do("POST", "model-versions/create", map[string]any{"name": "churn", "source": "runs:/" + runID + "/model2", "run_id": runID}, 200)["model_version"].(map[string]any)
	if v1["version"] != "1" || v2["version"] != "2" || v2["status"] != "READY" || v2["run_id"] != runID {
		t.Fatalf("model-versions/create: %v, %v", v1, v2)
	}
	if e := do("POST", "model-versions/create", map[string]any{"name": "nope", "source": "s"}, 404); e["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
		t.Fatalf("version of a missing model: %v", e)
	}
	do("POST", "registered-models/alias", map[string]any{"name": "churn", "alias": "champion", "version": "1"}, 200)
	do("POST", "registered-models/alias", map[string]any{"name": "churn", "alias": "champion", "version": "2"}, 200)
	if mv := do("GET", "registered-models/alias?name=churn&alias=champion", nil, 200)["model_version"].(map[string]any); mv["version"] != "2" || fmt.Sprint(mv["aliases"]) != "[champion]" {
		t.Fatalf("alias: %v", mv)
	}
	got2 := do("GET", "registered-models/get?name=churn", nil, 200)["registered_model"].(map[string]any)
	if lv := got2["latest_versions"].([]any); len(lv) != 1 || lv[0].(map[string]any)["version"] != "2" || len(got2["aliases"].([]any)) != 1 {
		t.Fatalf("registered-models/get: %v", got2)
	}
	if list := do("GET", "model-versions/search?filter="+url.QueryEscape("name = 'churn'"), nil, 200)["model_versions"].([]any); len(list) != 2 {
		t.Fatalf("model-versions/search: %v", list)
	}
	if list := do("POST", "registered-models/search", map[string]any{"filter": "name LIKE 'ch%'"}, 200)["registered_models"].([]any); len(list) != 1 {
		t.Fatalf("registered-models/search: %v", list)
	}
	if e := do("POST", "registered-models/search", map[string]any{"filter": "owner = 'x'"}, 400); e["error_code"] != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("bad registry filter: %v", e)
	}
	do("DELETE", "registered-models/alias?name=churn&alias=champion", nil, 200)
	if e := do("GET", "registered-models/alias?name=churn&alias=champion", nil, 404); e["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
		t.Fatalf("deleted alias: %v", e)
	}

	do("POST", "runs/delete", map[string]any{"run_id": runID}, 200)
	if st := do("GET", "runs/get?run_id="+runID, nil, 200)["run"].(map[string]any)["info"].(map[string]any)["lifecycle_stage"]; st != "deleted" {
		t.Fatalf("lifecycle after delete: %v", st)
	}
}

// TestMLflowRunSearch: runs/search with MLflow's filter syntax, ordering and paging.
func TestMLflowRunSearch(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	base := "http://" + n.srv.HTTPAddr() + "/api/2.0/mlflow/"
	post := func(path string, body any, wantStatus int) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := http.Post(base+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != wantStatus {
			t.Fatalf("POST %s: %d %s, want %d", path, resp.StatusCode, raw, wantStatus)
		}
		return out
	}
	expID := post("experiments/create", map[string]any{"name": "search"}, 200)["experiment_id"]
	names := map[string]string{}
	for i, spec := range []struct {
		model string
		acc   float64
		team  string
	}{{"tree", 0.91, "a"}, {"tree", 0.72, "b"}, {"linear", 0.85, "a"}, {"forest", 0.95, ""}} {
		info := post("runs/create", map[string]any{"experiment_id": expID, "run_name": fmt.Sprintf("r%d", i)}, 200)["run"].(map[string]any)["info"].(map[string]any)
		id := info["run_id"].(string)
		names[id] = info["run_name"].(string)
		post("runs/log-parameter", map[string]any{"run_id": id, "key": "model", "value": spec.model}, 200)
		post("runs/log-metric", map[string]any{"run_id": id, "key": "acc", "value": spec.acc, "step": 0}, 200)
		if spec.team != "" {
			post("runs/set-tag", map[string]any{"run_id": id, "key": "team", "value": spec.team}, 200)
		}
		if i == 0 {
			post("runs/update", map[string]any{"run_id": id, "status": "FINISHED"}, 200)
		}
	}
	search := func(body map[string]any) []string {
		t.Helper()
		body["experiment_ids"] = []any{expID}
		out := post("runs/search", body, 200)
		var got []string
		for _, r := range out["runs"].([]any) {
			got = append(got, names[r.(map[string]any)["info"].(map[string]any)["run_id"].(string)])
		}
		return got
	}
	check := func(got []string, want ...string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("runs: %v, want %v", got, want)
		}
	}
	check(search(map[string]any{"filter": "metrics.acc > 0.8 and params.model = 'tree'"}), "r0")
	check(search(map[string]any{"filter": "metrics.acc >= 0.85", "order_by": []any{"metrics.acc DESC"}}), "r3", "r0", "r2")
	check(search(map[string]any{"filter": "tags.team = 'a'", "order_by": []any{"metrics.acc ASC"}}), "r2", "r0")
	check(search(map[string]any{"filter": "params.model LIKE 'fo%'"}), "r3")
	check(search(map[string]any{"filter": "attributes.status = 'FINISHED'"}), "r0")
	check(search(map[string]any{"filter": "attributes.status IN ('RUNNING') and params.model ILIKE 'TREE'"}), "r1")
	check(search(map[string]any{"filter": "metrics.missing > 0"}))
	// Paging: max_results and the token MLflow's clients pass back.
	page := post("runs/search", map[string]any{"experiment_ids": []any{expID}, "order_by": []any{"metrics.acc DESC"}, "max_results": 3}, 200)
	tok, _ := page["next_page_token"].(string)
	if len(page["runs"].([]any)) != 3 || tok == "" {
		t.Fatalf("first page: %d runs, token %q", len(page["runs"].([]any)), tok)
	}
	check(search(map[string]any{"order_by": []any{"metrics.acc DESC"}, "max_results": 3, "page_token": tok}), "r1")
	// Malformed filters name the token and where it is.
	for filter, want := range map[string]string{
		"metrics.acc > 0.8 OR params.model = 'x'": "expected AND (MLflow filters join clauses with AND only) at character 19",
		"metrics.acc >":        "expected a value",
		"params.model = 'tree": "unterminated quote",
		"foo.bar = 'x'":        "is not metrics.<key>",
		"metrics.acc = 'high'": "compared with a number",
	} {
		e := post("runs/search", map[string]any{"experiment_ids": []any{expID}, "filter": filter}, 400)
		if e["error_code"] != "INVALID_PARAMETER_VALUE" || !strings.Contains(e["message"].(string), want) {
			t.Errorf("filter %q: %v, want a message containing %q", filter, e, want)
		}
	}
}
