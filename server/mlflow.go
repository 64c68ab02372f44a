package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	lakesql "github.com/lakehoused/lakehoused/sql"
)

// The tracking subset of MLflow's REST API (/api/2.0/mlflow/…) over the ml_* procedures and
// the ml tables, so MLflow's own clients can log to lakehoused. Each request is one
// statement (or a few) of an internal session; errors carry MLflow's error codes and HTTP
// statuses.

type mlflowAPI struct {
	s *Server
}

type mlflowError struct {
	status int
	code   string
	msg    string
}

func (e *mlflowError) Error() string { return e.code + ": " + e.msg }

func badRequest(format string, args ...any) error {
	return &mlflowError{http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf(format, args...)}
}

func (m *mlflowAPI) routes(mux *http.ServeMux) {
	h := func(pattern string, fn func(r *http.Request, body map[string]any) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			body := map[string]any{}
			if r.Method == http.MethodPost || (r.Method == http.MethodDelete && r.ContentLength > 0) {
				dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20))
				dec.UseNumber()
				if err := dec.Decode(&body); err != nil {
					writeMLflowError(w, badRequest("the request body is not a JSON object: %v", err))
					return
				}
			} else {
				for k, v := range r.URL.Query() {
					switch {
					case k == "order_by" || k == "experiment_ids" || len(v) > 1:
						// Lists, which GET requests repeat: ?order_by=a&order_by=b.
						list := make([]any, len(v))
						for i, x := range v {
							list[i] = x
						}
						body[k] = list
					case len(v) == 1:
						body[k] = v[0]
					}
				}
			}
			out, err := fn(r, body)
			if err != nil {
				writeMLflowError(w, err)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(out)
		})
	}
	const p = "/api/2.0/mlflow/"
	h("POST "+p+"experiments/create", m.createExperiment)
	h("GET "+p+"experiments/get", m.getExperiment)
	h("GET "+p+"experiments/get-by-name", m.getExperiment)
	h("POST "+p+"experiments/search", m.searchExperiments)
	h("GET "+p+"experiments/search", m.searchExperiments)
	h("POST "+p+"experiments/delete", m.call("ml_delete_experiment", "experiment_id"))
	h("POST "+p+"experiments/restore", m.call("ml_restore_experiment", "experiment_id"))
	h("POST "+p+"experiments/update", m.call("ml_rename_experiment", "experiment_id", "new_name"))
	h("POST "+p+"experiments/set-experiment-tag", m.call("ml_set_experiment_tag", "experiment_id", "key", "value"))
	h("POST "+p+"runs/create", m.createRun)
	h("GET "+p+"runs/get", m.getRun)
	h("POST "+p+"runs/update", m.updateRun)
	h("POST "+p+"runs/search", m.searchRuns)
	h("POST "+p+"runs/delete", m.call("ml_delete_run", "run_id"))
	h("POST "+p+"runs/restore", m.call("ml_restore_run", "run_id"))
	h("POST "+p+"runs/log-parameter", m.call("ml_log_param", "run_id", "key", "value"))
	h("POST "+p+"runs/set-tag", m.call("ml_set_tag", "run_id", "key", "value"))
	h("POST "+p+"runs/log-metric", m.logMetric)
	h("POST "+p+"runs/log-batch", m.logBatch)
	h("GET "+p+"metrics/get-history", m.metricHistory)
	m.registryRoutes(mux, h)
	m.artifactRoutes(mux)
}

func writeMLflowError(w http.ResponseWriter, err error) {
	me, ok := err.(*mlflowError)
	if !ok {
		code, msg, known := lakesql.MLErrorCode(err)
		me = &mlflowError{http.StatusInternalServerError, code, msg}
		if known {
			me.status = http.StatusBadRequest
			if code == "RESOURCE_DOES_NOT_EXIST" {
				me.status = http.StatusNotFound
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(me.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error_code": me.code, "message": me.msg})
}

// query runs one statement for the request.
func (m *mlflowAPI) query(r *http.Request, q string) ([]string, [][]any, error) {
	return m.s.engine.Query(r.Context(), "mlflow", q)
}

// quoteAll renders strings as a list of SQL literals.
func quoteAll(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = lakesql.SQLString(s)
	}
	return strings.Join(q, ", ")
}

// str reads a required string field.
func str(body map[string]any, key string) (string, error) {
	v, ok := body[key]
	if !ok || v == nil {
		return "", badRequest("missing value for required parameter '%s'", key)
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	}
	return "", badRequest("parameter '%s' must be a string, got %v", key, v)
}

func optStr(body map[string]any, key string) string {
	s, _ := str(body, key)
	return s
}

func optInt(body map[string]any, key string) (int64, bool, error) {
	v, ok := body[key]
	if !ok || v == nil {
		return 0, false, nil
	}
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, false, badRequest("parameter '%s' must be an integer, got %v", key, v)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, badRequest("parameter '%s' must be an integer, got %q", key, s)
	}
	return n, true, nil
}

// call maps a request's fields, in order, to a procedure's string arguments.
func (m *mlflowAPI) call(proc string, fields ...string) func(*http.Request, map[string]any) (any, error) {
	return func(r *http.Request, body map[string]any) (any, error) {
		args := make([]string, len(fields))
		for i, f := range fields {
			v, err := str(body, f)
			if err != nil {
				return nil, err
			}
			args[i] = lakesql.SQLString(v)
		}
		return m.exec(r, "CALL "+proc+"("+strings.Join(args, ", ")+")")
	}
}

// exec runs a statement whose answer is MLflow's empty object.
func (m *mlflowAPI) exec(r *http.Request, q string) (any, error) {
	if _, _, err := m.query(r, q); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func (m *mlflowAPI) createExperiment(r *http.Request, body map[string]any) (any, error) {
	name, err := str(body, "name")
	if err != nil {
		return nil, err
	}
	q := "CALL ml_create_experiment(" + lakesql.SQLString(name)
	if loc := optStr(body, "artifact_location"); loc != "" {
		q += ", " + lakesql.SQLString(loc)
	}
	_, rows, err := m.query(r, q+")")
	if err != nil {
		return nil, err
	}
	return map[string]any{"experiment_id": fmt.Sprint(rows[0][0])}, nil
}

const experimentCols = "experiment_id, name, artifact_location, lifecycle_stage, last_update_time, creation_time"

// experimentAttributes are the experiment columns a filter or order_by may name.
var experimentAttributes = map[string]int{"experiment_id": 0, "name": 1, "artifact_location": 2, "lifecycle_stage": 3,
	"last_update_time": 4, "creation_time": 5}

// experiments reads the experiments matching where, as MLflow's Experiment objects.
func (m *mlflowAPI) experiments(r *http.Request, where string) ([]map[string]any, error) {
	if err := m.ensure(r); err != nil {
		return nil, err
	}
	_, rows, err := m.query(r, "SELECT "+experimentCols+" FROM ml.experiments WHERE "+where+" ORDER BY CAST(experiment_id AS SIGNED)")
	if err != nil {
		return nil, err
	}
	_, tagRows, err := m.query(r, "SELECT experiment_id, `key`, value FROM ml.experiment_tags ORDER BY experiment_id, `key`")
	if err != nil {
		return nil, err
	}
	tags := map[string][]any{}
	for _, t := range tagRows {
		id := fmt.Sprint(t[0])
		tags[id] = append(tags[id], map[string]any{"key": t[1], "value": t[2]})
	}
	out := make([]map[string]any, len(rows))
	for i, row := range rows {
		e := map[string]any{"experiment_id": row[0], "name": row[1], "artifact_location": row[2], "lifecycle_stage": row[3],
			"last_update_time": row[4], "creation_time": row[5]}
		if t := tags[fmt.Sprint(row[0])]; len(t) > 0 {
			e["tags"] = t
		}
		out[i] = e
	}
	return out, nil
}

func (m *mlflowAPI) getExperiment(r *http.Request, body map[string]any) (any, error) {
	where := ""
	if id := optStr(body, "experiment_id"); id != "" {
		where = "experiment_id = " + lakesql.SQLString(id)
	} else if name := optStr(body, "experiment_name"); name != "" {
		where = "name = " + lakesql.SQLString(name)
	} else {
		return nil, badRequest("missing value for required parameter 'experiment_id' (or 'experiment_name')")
	}
	exps, err := m.experiments(r, where)
	if err != nil {
		return nil, err
	}
	if len(exps) == 0 {
		return nil, &mlflowError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "no experiment where " + where}
	}
	return map[string]any{"experiment": exps[0]}, nil
}

// ensure makes the ml tables exist before a plain SELECT reads them.
func (m *mlflowAPI) ensure(*http.Request) error { return m.s.engine.EnsureML() }

// searchExperiments is experiments/search: filter on attributes (name, creation_time,
// last_update_time; a bare name works too) and tags, order_by, view_type, paging.
func (m *mlflowAPI) searchExperiments(r *http.Request, body map[string]any) (any, error) {
	clauses, err := parseFilter(optStr(body, "filter"), "name", "creation_time", "last_update_time", "experiment_id")
	if err != nil {
		return nil, err
	}
	for _, c := range clauses {
		_, ok := experimentAttributes[c.key]
		if c.entity != "tags" && (c.entity != "attributes" || !ok) {
			return nil, badRequest("invalid filter: experiments are filtered on attributes (name, creation_time, last_update_time) and tags, not %s.%s", c.entity, c.key)
		}
	}
	orders, err := parseOrderBy(strList(body, "order_by"), experimentAttributes)
	if err != nil {
		return nil, err
	}
	for _, o := range orders {
		if o.ref.entity != "attributes" {
			return nil, badRequest("invalid order_by: experiments are ordered by attributes, not %s.%s", o.ref.entity, o.ref.key)
		}
	}
	if len(orders) == 0 { // MLflow's default: newest first (then by id, below)
		orders = []runOrder{{ref: valueRef{"attributes", "creation_time"}, desc: true}}
	}
	max, offset, err := paging(body)
	if err != nil {
		return nil, err
	}
	where, err := viewWhere("view_type", optStr(body, "view_type"))
	if err != nil {
		return nil, err
	}
	exps, err := m.experiments(r, where)
	if err != nil {
		return nil, err
	}
	value := func(e map[string]any, rf valueRef) any {
		if rf.entity == "attributes" {
			return e[rf.key]
		}
		tags, _ := e["tags"].([]any)
		for _, t := range tags {
			if kv := t.(map[string]any); kv["key"] == rf.key {
				return kv["value"]
			}
		}
		return nil
	}
	kept := filterAndOrder(exps, clauses, orders, value, func(a, b map[string]any) int {
		return makeSortKey(a["experiment_id"]).compare(makeSortKey(b["experiment_id"]), false)
	})
	out := map[string]any{}
	err = page(out, "experiments", len(kept), max, offset, func(i int) (any, error) { return kept[i], nil })
	return out, err
}

// tagsOf reads [{"key":…, "value":…}] lists.
func tagsOf(body map[string]any, key string) ([][2]string, error) {
	v, ok := body[key]
	if !ok || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, badRequest("parameter '%s' must be a list of {key, value}", key)
	}
	var out [][2]string
	for _, item := range list {
		kv, ok := item.(map[string]any)
		if !ok {
			return nil, badRequest("parameter '%s' must be a list of {key, value}", key)
		}
		k, err := str(kv, "key")
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{k, optStr(kv, "value")})
	}
	return out, nil
}

func (m *mlflowAPI) createRun(r *http.Request, body map[string]any) (any, error) {
	exp := optStr(body, "experiment_id")
	if exp == "" {
		exp = "0"
	}
	tags, err := tagsOf(body, "tags")
	if err != nil {
		return nil, err
	}
	_, rows, err := m.query(r, "CALL ml_start_run("+lakesql.SQLString(exp)+", "+lakesql.SQLString(optStr(body, "run_name"))+")")
	if err != nil {
		return nil, err
	}
	runID := fmt.Sprint(rows[0][0])
	for _, t := range tags {
		if _, _, err := m.query(r, fmt.Sprintf("CALL ml_set_tag(%s, %s, %s)", lakesql.SQLString(runID), lakesql.SQLString(t[0]), lakesql.SQLString(t[1]))); err != nil {
			return nil, err
		}
	}
	run, err := m.run(r, runID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"run": run}, nil
}

// run is MLflow's Run: info, and data with the latest metrics, params and tags.
func (m *mlflowAPI) run(r *http.Request, runID string) (map[string]any, error) {
	id := lakesql.SQLString(runID)
	_, rows, err := m.query(r, "SELECT run_id, experiment_id, name, status, start_time, end_time, user_id, artifact_uri, lifecycle_stage FROM ml.runs WHERE run_id = "+id)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, &mlflowError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("run '%s' not found", runID)}
	}
	row := rows[0]
	info := map[string]any{"run_id": row[0], "run_uuid": row[0], "experiment_id": row[1], "run_name": row[2], "status": row[3],
		"start_time": row[4], "user_id": row[6], "artifact_uri": row[7], "lifecycle_stage": row[8]}
	if row[5] != nil {
		info["end_time"] = row[5]
	}
	kv := func(q string) ([]any, error) {
		_, rows, err := m.query(r, q)
		if err != nil {
			return nil, err
		}
		out := []any{}
		for _, x := range rows {
			out = append(out, map[string]any{"key": x[0], "value": x[1]})
		}
		return out, nil
	}
	params, err := kv("SELECT `key`, value FROM ml.params WHERE run_id = " + id + " ORDER BY `key`")
	if err != nil {
		return nil, err
	}
	tags, err := kv("SELECT `key`, value FROM ml.run_tags WHERE run_id = " + id + " ORDER BY `key`")
	if err != nil {
		return nil, err
	}
	_, mrows, err := m.query(r, "SELECT `key`, value, timestamp, step FROM ml.latest_metrics WHERE run_id = "+id+" ORDER BY `key`")
	if err != nil {
		return nil, err
	}
	metrics := []any{}
	for _, x := range mrows {
		metrics = append(metrics, metricJSON(x))
	}
	return map[string]any{"info": info, "data": map[string]any{"metrics": metrics, "params": params, "tags": tags}, "inputs": map[string]any{}}, nil
}

// metricJSON writes a metric; NaN and ±Infinity, which JSON lacks, go as MLflow's clients
// read them: as the strings "NaN", "Infinity", "-Infinity".
func metricJSON(x []any) map[string]any {
	var v any = x[1]
	if f, ok := x[1].(float64); ok {
		switch {
		case math.IsNaN(f):
			v = "NaN"
		case math.IsInf(f, 1):
			v = "Infinity"
		case math.IsInf(f, -1):
			v = "-Infinity"
		}
	}
	return map[string]any{"key": x[0], "value": v, "timestamp": x[2], "step": x[3]}
}

func (m *mlflowAPI) getRun(r *http.Request, body map[string]any) (any, error) {
	runID := optStr(body, "run_id")
	if runID == "" {
		runID = optStr(body, "run_uuid")
	}
	if runID == "" {
		return nil, badRequest("missing value for required parameter 'run_id'")
	}
	if err := m.ensure(r); err != nil {
		return nil, err
	}
	run, err := m.run(r, runID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"run": run}, nil
}

func (m *mlflowAPI) updateRun(r *http.Request, body map[string]any) (any, error) {
	runID, err := str(body, "run_id")
	if err != nil {
		return nil, err
	}
	if status := optStr(body, "status"); status != "" && status != "RUNNING" && status != "SCHEDULED" {
		if _, _, err := m.query(r, fmt.Sprintf("CALL ml_end_run(%s, %s)", lakesql.SQLString(runID), lakesql.SQLString(status))); err != nil {
			return nil, err
		}
	}
	run, err := m.run(r, runID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"run_info": run["info"]}, nil
}

func (m *mlflowAPI) logMetric(r *http.Request, body map[string]any) (any, error) {
	runID, err := str(body, "run_id")
	if err != nil {
		return nil, err
	}
	key, err := str(body, "key")
	if err != nil {
		return nil, err
	}
	value, err := str(body, "value")
	if err != nil {
		return nil, err
	}
	step, _, err := optInt(body, "step")
	if err != nil {
		return nil, err
	}
	ts, ok, err := optInt(body, "timestamp")
	if err != nil {
		return nil, err
	}
	q := fmt.Sprintf("CALL ml_log_metric(%s, %s, %s, %d", lakesql.SQLString(runID), lakesql.SQLString(key), lakesql.SQLString(value), step)
	if ok {
		q += fmt.Sprintf(", %d", ts)
	}
	return m.exec(r, q+")")
}

func (m *mlflowAPI) logBatch(r *http.Request, body map[string]any) (any, error) {
	runID, err := str(body, "run_id")
	if err != nil {
		return nil, err
	}
	batch := map[string]any{}
	for _, k := range []string{"metrics", "params", "tags"} {
		if v, ok := body[k]; ok {
			batch[k] = v
		}
	}
	b, err := json.Marshal(batch)
	if err != nil {
		return nil, badRequest("log-batch: %v", err)
	}
	return m.exec(r, fmt.Sprintf("CALL ml_log_batch(%s, %s)", lakesql.SQLString(runID), lakesql.SQLString(string(b))))
}

func (m *mlflowAPI) metricHistory(r *http.Request, body map[string]any) (any, error) {
	runID := optStr(body, "run_id")
	if runID == "" {
		runID = optStr(body, "run_uuid")
	}
	key, err := str(body, "metric_key")
	if err != nil {
		return nil, err
	}
	if runID == "" {
		return nil, badRequest("missing value for required parameter 'run_id'")
	}
	if err := m.ensure(r); err != nil {
		return nil, err
	}
	if _, err := m.run(r, runID); err != nil {
		return nil, err
	}
	_, rows, err := m.query(r, fmt.Sprintf("SELECT `key`, value, timestamp, step FROM ml.metrics WHERE run_id = %s AND `key` = %s ORDER BY step, timestamp",
		lakesql.SQLString(runID), lakesql.SQLString(key)))
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, x := range rows {
		out = append(out, metricJSON(x))
	}
	return map[string]any{"metrics": out}, nil
}
