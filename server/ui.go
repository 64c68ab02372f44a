package server

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	lakesql "github.com/lakehoused/lakehoused/sql"
)

// The web scoreboard (/ui): server-rendered pages over the ml tables, with a little
// JavaScript (ui/static/app.js) for run selection and chart read-outs. Every page is a GET
// that changes nothing; the state-changing API routes beside them refuse cross-origin
// browser requests (see Server.routes). Pages do
// their paging, sorting and downsampling here, so they stay small however many runs and
// points there are.

//go:embed ui
var uiFiles embed.FS

var uiTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"time":     fmtMillis,
	"duration": fmtDuration,
	"swatch":   swatch,
}).ParseFS(uiFiles, "ui/*.html"))

type scoreboard struct {
	m *mlflowAPI
}

func (u *scoreboard) routes(mux *http.ServeMux) {
	static, _ := fs.Sub(uiFiles, "ui/static")
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /ui", u.page(u.experiments))
	mux.HandleFunc("GET /ui/{$}", u.page(u.experiments))
	mux.HandleFunc("GET /ui/experiments/{id}", u.page(u.runs))
	mux.HandleFunc("GET /ui/runs/{id}", u.page(u.run))
	mux.HandleFunc("GET /ui/compare", u.page(u.compare))
}

// page renders the template a handler names with the data it returns; errors become an
// error page with MLflow's status for them.
func (u *scoreboard) page(fn func(r *http.Request) (string, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Type", "text/html; charset=utf-8")
		name, data, err := fn(r)
		status := http.StatusOK
		if err != nil {
			status = http.StatusInternalServerError
			msg := err.Error()
			var me *mlflowError
			if errors.As(err, &me) {
				status, msg = me.status, me.msg
			} else if code, m, known := lakesql.MLErrorCode(err); known {
				status, msg = http.StatusBadRequest, m
				if code == "RESOURCE_DOES_NOT_EXIST" {
					status = http.StatusNotFound
				}
			}
			name, data = "error.html", map[string]any{"Title": http.StatusText(status), "Status": status, "Message": msg}
		}
		var buf bytes.Buffer
		if err := uiTemplates.ExecuteTemplate(&buf, name, data); err != nil {
			http.Error(w, "rendering "+name+": "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write(buf.Bytes())
	}
}

func fmtMillis(v any) string {
	ms, ok := v.(int64) // Engine.Query gives integers as int64
	if !ok {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05")
}

func fmtDuration(start, end any) string {
	s, ok1 := start.(int64)
	e, ok2 := end.(int64)
	if !ok1 || !ok2 || e < s {
		return ""
	}
	d := time.Duration(e-s) * time.Millisecond
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
}

// cellText shows a metric, param or tag value.
func cellText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		return fmtNum(x)
	}
	return fmt.Sprint(v)
}

// ---- experiments list ----

type uiExperiment struct {
	ID, Name, Stage string
	Runs            int64
	Updated         any
	Tags            string
}

func (u *scoreboard) experiments(r *http.Request) (string, any, error) {
	view := r.URL.Query().Get("view")
	where := "lifecycle_stage = 'active'"
	if view == "all" {
		where = "TRUE"
	}
	exps, err := u.m.experiments(r, where)
	if err != nil {
		return "", nil, err
	}
	_, counts, err := u.m.query(r, "SELECT experiment_id, COUNT(*) FROM ml.runs WHERE lifecycle_stage = 'active' GROUP BY experiment_id")
	if err != nil {
		return "", nil, err
	}
	n := map[string]int64{}
	for _, c := range counts {
		k, _ := c[1].(int64)
		n[fmt.Sprint(c[0])] = k
	}
	var list []uiExperiment
	for _, e := range exps {
		id := fmt.Sprint(e["experiment_id"])
		var tags []string
		if t, ok := e["tags"].([]any); ok {
			for _, kv := range t {
				m := kv.(map[string]any)
				tags = append(tags, fmt.Sprintf("%v=%v", m["key"], m["value"]))
			}
		}
		list = append(list, uiExperiment{ID: id, Name: fmt.Sprint(e["name"]), Stage: fmt.Sprint(e["lifecycle_stage"]),
			Runs: n[id], Updated: e["last_update_time"], Tags: strings.Join(tags, ", ")})
	}
	return "experiments.html", map[string]any{"Title": "Experiments", "Experiments": list, "All": view == "all"}, nil
}

// ---- runs table ----

type uiColumn struct {
	Key   string // metrics.acc, params.lr, attributes.start_time
	Label string
	Kind  string // metric, param, tag, attr
	Sort  string // link that sorts by this column
	Arrow string // ▲ or ▼ when the table is sorted by it
}

type uiCell struct {
	Text string
	Num  bool
}

type uiRunRow struct {
	ID, Name, Status, Start, Duration, User string
	Cells                                   []uiCell
}

const uiMaxColumns = 40

func (u *scoreboard) runs(r *http.Request) (string, any, error) {
	q := r.URL.Query()
	expID := r.PathValue("id")
	exps, err := u.m.experiments(r, "experiment_id = "+lakesql.SQLString(expID))
	if err != nil {
		return "", nil, err
	}
	if len(exps) == 0 {
		return "", nil, &mlflowError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("experiment %q does not exist", expID)}
	}
	size, _ := strconv.Atoi(q.Get("size"))
	if size <= 0 {
		size = 50
	}
	size = min(size, 1000)
	offset, _ := strconv.Atoi(q.Get("offset"))
	offset = max(offset, 0)
	order := strings.TrimSpace(q.Get("order"))
	if order == "" {
		order = "attributes.start_time DESC"
	}
	data := map[string]any{"Title": fmt.Sprint(exps[0]["name"]), "Experiment": exps[0], "Filter": q.Get("filter"),
		"Cols": q.Get("cols"), "Order": order, "Size": size}
	var found [][]any
	found, err = u.m.findRuns(r.Context(), runSearch{expIDs: []string{expID}, filter: q.Get("filter"), orderBy: []string{order}})
	if err != nil {
		var me *mlflowError
		if !errors.As(err, &me) || me.status != http.StatusBadRequest {
			return "", nil, err
		}
		// A filter or order that does not parse is shown above an empty table.
		data["Error"] = me.msg
		found = nil
	}
	total := len(found)
	offset = min(offset, max(total-1, 0)/size*size)
	pageRuns := found[offset:min(offset+size, total)]
	ids := make([]string, len(pageRuns))
	for i, run := range pageRuns {
		ids[i] = fmt.Sprint(run[0])
	}
	vals, available, err := u.runValues(r, ids)
	if err != nil {
		return "", nil, err
	}
	// Columns: the ones asked for, else every metric and param the page's runs have.
	var colKeys []string
	if c := strings.TrimSpace(q.Get("cols")); c != "" {
		for _, k := range strings.Split(c, ",") {
			k = strings.TrimSpace(k)
			ent, key, ok := strings.Cut(k, ".")
			ent = entityAliases[strings.ToLower(ent)]
			if !ok || key == "" || ent == "" || ent == "attributes" {
				data["Error"] = fmt.Sprintf("column %q is not metrics.<key>, params.<key> or tags.<key>", k)
				continue
			}
			colKeys = append(colKeys, ent+"."+key)
		}
	} else {
		colKeys = append(sortedKeys(available["metrics"]), sortedKeys(available["params"])...)
	}
	if len(colKeys) > uiMaxColumns {
		colKeys = colKeys[:uiMaxColumns]
	}
	link := func(change map[string]string) string {
		v := url.Values{}
		for _, k := range []string{"filter", "cols", "size"} {
			if q.Get(k) != "" {
				v.Set(k, q.Get(k))
			}
		}
		v.Set("order", order)
		for k, x := range change {
			if x == "" {
				v.Del(k)
			} else {
				v.Set(k, x)
			}
		}
		return "/ui/experiments/" + url.PathEscape(expID) + "?" + v.Encode()
	}
	orderKey, orderDesc := order, false
	if f := strings.Fields(order); len(f) > 0 {
		orderKey, orderDesc = f[0], len(f) > 1 && strings.EqualFold(f[1], "DESC")
	}
	column := func(key, label, kind string) uiColumn {
		c := uiColumn{Key: key, Label: label, Kind: kind}
		dir := "DESC"
		if key == orderKey {
			if orderDesc {
				c.Arrow, dir = "▼", "ASC"
			} else {
				c.Arrow = "▲"
			}
		}
		c.Sort = link(map[string]string{"order": key + " " + dir, "offset": ""})
		return c
	}
	fixed := []uiColumn{column("attributes.run_name", "Run", "attr"), column("attributes.status", "Status", "attr"),
		column("attributes.start_time", "Started", "attr"), column("attributes.end_time", "Duration", "attr"),
		column("attributes.user_id", "User", "attr")}
	var cols []uiColumn
	for _, k := range colKeys {
		ent, key, _ := strings.Cut(k, ".")
		cols = append(cols, column(k, key, strings.TrimSuffix(ent, "s")))
	}
	rows := make([]uiRunRow, len(pageRuns))
	for i, run := range pageRuns {
		id := fmt.Sprint(run[0])
		name := cellText(run[2])
		if name == "" {
			name = id[:min(8, len(id))]
		}
		row := uiRunRow{ID: id, Name: name, Status: cellText(run[3]), Start: fmtMillis(run[4]),
			Duration: fmtDuration(run[4], run[5]), User: cellText(run[6])}
		for _, k := range colKeys {
			v := vals[id][k]
			_, isNum := v.(float64)
			row.Cells = append(row.Cells, uiCell{Text: cellText(v), Num: isNum})
		}
		rows[i] = row
	}
	var avail []string
	for _, ent := range []string{"metrics", "params", "tags"} {
		avail = append(avail, sortedKeys(available[ent])...)
	}
	data["Fixed"], data["Columns"], data["Rows"], data["Available"] = fixed, cols, rows, avail
	data["ColKeys"] = strings.Join(colKeys, ",")
	data["Total"], data["From"], data["To"] = total, min(offset+1, total), offset+len(pageRuns)
	if offset > 0 {
		data["Prev"] = link(map[string]string{"offset": strconv.Itoa(max(offset-size, 0))})
		data["First"] = link(map[string]string{"offset": ""})
	}
	if offset+size < total {
		data["Next"] = link(map[string]string{"offset": strconv.Itoa(offset + size)})
		data["Last"] = link(map[string]string{"offset": strconv.Itoa((total - 1) / size * size)})
	}
	data["Sizes"] = []int{25, 50, 100, 250, 1000}
	return "runs.html", data, nil
}

// runValues reads the latest metrics, params and tags of runs, as stored (metrics as
// float64, NaN and ±Inf included): by run id, then by "metrics.<key>", "params.<key>" or
// "tags.<key>"; available lists the keys found, by entity.
func (u *scoreboard) runValues(r *http.Request, ids []string) (vals map[string]map[string]any, available map[string]map[string]bool, err error) {
	vals = map[string]map[string]any{}
	available = map[string]map[string]bool{"metrics": {}, "params": {}, "tags": {}}
	if len(ids) == 0 {
		return vals, available, nil
	}
	in := " WHERE run_id IN (" + quoteAll(ids) + ")"
	for _, src := range []struct{ entity, table string }{{"metrics", "latest_metrics"}, {"params", "params"}, {"tags", "run_tags"}} {
		_, rows, err := u.m.query(r, "SELECT run_id, `key`, value FROM ml."+src.table+in)
		if err != nil {
			return nil, nil, err
		}
		for _, x := range rows {
			id, key := fmt.Sprint(x[0]), src.entity+"."+fmt.Sprint(x[1])
			if vals[id] == nil {
				vals[id] = map[string]any{}
			}
			vals[id][key] = x[2]
			available[src.entity][key] = true
		}
	}
	return vals, available, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---- one run ----

type uiKV struct{ Key, Value string }

type uiMetric struct {
	Key                 string
	Value, Min, Max     string
	Step, Points, Since any
}

type uiArtifact struct {
	Path, Href string
	Size       int64
}

// history reads the metric points of the given runs, by run and key, in step order.
func (u *scoreboard) history(r *http.Request, runIDs []string) (map[string]map[string][]lakesql.MetricPoint, error) {
	pts, err := u.m.s.engine.MetricHistory(r.Context(), runIDs)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string][]lakesql.MetricPoint{}
	for _, p := range pts {
		if out[p.RunID] == nil {
			out[p.RunID] = map[string][]lakesql.MetricPoint{}
		}
		out[p.RunID][p.Key] = append(out[p.RunID][p.Key], p)
	}
	for _, keys := range out {
		for _, pts := range keys {
			sort.Slice(pts, func(i, j int) bool {
				if pts[i].Step != pts[j].Step {
					return pts[i].Step < pts[j].Step
				}
				return pts[i].Timestamp < pts[j].Timestamp
			})
		}
	}
	return out, nil
}

// toSeries turns points into a chart series; byTime uses seconds since t0 as x.
func toSeries(name, color string, pts []lakesql.MetricPoint, byTime bool, t0 int64) series {
	s := series{name: name, color: color}
	for _, p := range pts {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			s.skip++
			continue
		}
		x := float64(p.Step)
		if byTime {
			x = float64(p.Timestamp-t0) / 1000
		}
		s.points = append(s.points, point{x, p.Value})
	}
	s.total = len(s.points)
	return s
}

// sameStep reports whether every point of every history has one step, so that the chart
// is better drawn against time.
func sameStep(hs ...[]lakesql.MetricPoint) (bool, int64) {
	first, t0, n := int64(0), int64(math.MaxInt64), 0
	same := true
	for _, h := range hs {
		for _, p := range h {
			if n == 0 {
				first = p.Step
			}
			same = same && p.Step == first
			t0 = min(t0, p.Timestamp)
			n++
		}
	}
	return same && n > 1, t0
}

const uiMaxCharts = 60

func (u *scoreboard) run(r *http.Request) (string, any, error) {
	id := r.PathValue("id")
	if err := u.m.ensure(r); err != nil {
		return "", nil, err
	}
	run, err := u.m.run(r, id)
	if err != nil {
		return "", nil, err
	}
	info := run["info"].(map[string]any)
	d := run["data"].(map[string]any)
	kvs := func(list any) []uiKV {
		var out []uiKV
		for _, x := range list.([]any) {
			m := x.(map[string]any)
			out = append(out, uiKV{fmt.Sprint(m["key"]), cellText(m["value"])})
		}
		return out
	}
	_, latest, err := u.m.query(r, "SELECT `key`, value, step, min_value, max_value FROM ml.latest_metrics WHERE run_id = "+lakesql.SQLString(id)+" ORDER BY `key`")
	if err != nil {
		return "", nil, err
	}
	hist, err := u.history(r, []string{id})
	if err != nil {
		return "", nil, err
	}
	var metrics []uiMetric
	var charts []template.HTML
	for _, x := range latest {
		key := fmt.Sprint(x[0])
		metrics = append(metrics, uiMetric{Key: key, Value: cellText(x[1]), Step: x[2], Min: cellText(x[3]), Max: cellText(x[4]), Points: len(hist[id][key])})
		if len(charts) < uiMaxCharts {
			byTime, t0 := sameStep(hist[id][key])
			xl := "step"
			if byTime {
				xl = "seconds since first value"
			}
			charts = append(charts, lineChart(key, xl, []series{toSeries(key, color(0), hist[id][key], byTime, t0)}))
		}
	}
	artifacts, err := u.artifacts(r, fmt.Sprint(info["artifact_uri"]))
	if err != nil {
		return "", nil, err
	}
	name := cellText(info["run_name"])
	if name == "" {
		name = id
	}
	_, exp, err := u.m.query(r, "SELECT name FROM ml.experiments WHERE experiment_id = "+lakesql.SQLString(fmt.Sprint(info["experiment_id"])))
	if err != nil {
		return "", nil, err
	}
	expName := ""
	if len(exp) > 0 {
		expName = fmt.Sprint(exp[0][0])
	}
	return "run.html", map[string]any{"Title": name, "Name": name, "Info": info, "ExperimentName": expName,
		"Params": kvs(d["params"]), "Tags": kvs(d["tags"]), "Metrics": metrics, "Charts": charts,
		"MoreCharts": len(latest) - len(charts), "Artifacts": artifacts}, nil
}

// artifacts lists the artifacts (up to 1000) under a run's artifact URI, with links to
// download them; none when they are kept somewhere this server does not serve.
func (u *scoreboard) artifacts(r *http.Request, uri string) ([]uiArtifact, error) {
	root, ok := servedArtifactRoot(uri)
	if !ok {
		return nil, nil
	}
	objs, err := u.m.s.warehouse.List(r.Context(), artifactPrefix+root+"/")
	if err != nil {
		return nil, err
	}
	var out []uiArtifact
	for _, o := range objs {
		if len(out) == 1000 {
			break
		}
		rel := strings.TrimPrefix(o.Key, artifactPrefix+root+"/")
		href := "/api/2.0/mlflow-artifacts/artifacts/" + (&url.URL{Path: path.Join(root, rel)}).EscapedPath()
		out = append(out, uiArtifact{Path: rel, Href: href, Size: o.Size})
	}
	return out, nil
}

// ---- compare ----

type uiCompareRow struct {
	Key    string
	Values []string // as shown
	raw    []any    // as logged, nil where a run lacks it
	Same   bool
}

// sameValue compares two raw values exactly (NaN is the same as NaN).
func sameValue(a, b any) bool {
	fa, ok1 := a.(float64)
	fb, ok2 := b.(float64)
	if ok1 && ok2 {
		return fa == fb || math.IsNaN(fa) && math.IsNaN(fb)
	}
	if (a == nil) != (b == nil) {
		return false
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func (u *scoreboard) compare(r *http.Request) (string, any, error) {
	var ids []string
	for _, part := range r.URL.Query()["runs"] {
		for _, id := range strings.Split(part, ",") {
			if id = strings.TrimSpace(id); id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) < 2 || len(ids) > 10 {
		return "", nil, badRequest("compare takes 2 to 10 runs (runs=id,id,…), got %d", len(ids))
	}
	if err := u.m.ensure(r); err != nil {
		return "", nil, err
	}
	type cmpRun struct {
		ID, Name, Color, Status string
	}
	_, rows, err := u.m.query(r, "SELECT run_id, name, status FROM ml.runs WHERE run_id IN ("+quoteAll(ids)+")")
	if err != nil {
		return "", nil, err
	}
	info := map[string][]any{}
	for _, x := range rows {
		info[fmt.Sprint(x[0])] = x
	}
	vals, available, err := u.runValues(r, ids)
	if err != nil {
		return "", nil, err
	}
	runs := make([]cmpRun, len(ids))
	for i, id := range ids {
		x, ok := info[id]
		if !ok {
			return "", nil, &mlflowError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("run '%s' not found", id)}
		}
		name := cellText(x[1])
		if name == "" {
			name = id[:min(8, len(id))]
		}
		runs[i] = cmpRun{ID: id, Name: name, Color: color(i), Status: cellText(x[2])}
	}
	// One row per key: the runs' values as logged (nil where a run lacks it).
	table := func(entity string) []uiCompareRow {
		var out []uiCompareRow
		for _, k := range sortedKeys(available[entity]) {
			row := uiCompareRow{Key: strings.TrimPrefix(k, entity+"."), Same: true}
			for _, id := range ids {
				v := vals[id][k]
				row.Same = row.Same && sameValue(v, vals[ids[0]][k])
				row.raw = append(row.raw, v)
				row.Values = append(row.Values, cellText(v))
			}
			out = append(out, row)
		}
		return out
	}
	params, metrics := table("params"), table("metrics")
	hist, err := u.history(r, ids)
	if err != nil {
		return "", nil, err
	}
	var charts []template.HTML
	for _, row := range metrics {
		k := row.Key
		if len(charts) == uiMaxCharts {
			break
		}
		var hs [][]lakesql.MetricPoint
		for _, id := range ids {
			hs = append(hs, hist[id][k])
		}
		byTime, t0 := sameStep(hs...)
		var ss []series
		for i, run := range runs {
			if len(hs[i]) > 0 {
				ss = append(ss, toSeries(run.Name, run.Color, hs[i], byTime, t0))
			}
		}
		xl := "step"
		if byTime {
			xl = "seconds since first value"
		}
		charts = append(charts, lineChart(k, xl, ss))
	}
	// Parallel coordinates: the params that differ, then the metrics.
	var axes []pcAxis
	for _, row := range params {
		if !row.Same && len(axes) < 8 {
			axes = append(axes, newPCAxis(row.Key, row.raw))
		}
	}
	for _, row := range metrics {
		if len(axes) < 12 {
			axes = append(axes, newPCAxis(row.Key, row.raw))
		}
	}
	names, colors := make([]string, len(runs)), make([]string, len(runs))
	for i, run := range runs {
		names[i], colors[i] = run.Name, run.Color
	}
	return "compare.html", map[string]any{"Title": "Compare runs", "Runs": runs, "Params": params, "Metrics": metrics,
		"Charts": charts, "Parallel": parallelCoordinates(names, colors, axes)}, nil
}
