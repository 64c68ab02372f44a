package sql

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"

	"github.com/lakehoused/lakehoused/ml"
)

// Training in SQL (issue 7): CALL ml_train trains one model on the rows of a SELECT, scores
// it by k-fold cross-validation and on a held-out split, logs the run in the tracking
// tables, saves the model file as an artifact of the run and registers it as the next
// version of the named model. ml_deploy points the `production` alias at a version.
//
// Everything that can be refused (the arguments, the data, the hyper-parameters) is checked,
// and the model trained, before anything is written; the writes then go into the caller's
// transaction, one statement per tracking table, so with autocommit the call commits them at
// its end and a failed call leaves no run, no version and no ml.models row behind.

// mlModelsTable lists every trained version with what it was trained with and how it scored.
const mlModelsTable = "CREATE TABLE IF NOT EXISTS ml.models (name VARCHAR(256) NOT NULL, version INT NOT NULL, " +
	"algorithm VARCHAR(64) NOT NULL, task VARCHAR(16) NOT NULL, hyperparameters JSON, metric VARCHAR(32) NOT NULL, " +
	"cv_score DOUBLE, holdout_score DOUBLE, run_id VARCHAR(32) NOT NULL, artifact_uri TEXT NOT NULL, created DATETIME(6) NOT NULL, " +
	"PRIMARY KEY (name, version))"

// modelArtifact is the model file's path inside its run's artifacts.
const modelArtifact = "model/model.json"

// artifactKeyPrefix is where mlflow-artifacts:/ URIs live in the warehouse (the MLflow
// artifact proxy in server/mlflow_artifacts.go keeps them there too).
const artifactKeyPrefix = "_artifacts/"

var trainResultSchema = gms.Schema{
	{Name: "model", Type: types.LongText}, {Name: "version", Type: types.Int64}, {Name: "run_id", Type: types.LongText},
	{Name: "metric", Type: types.LongText}, {Name: "cv_score", Type: types.Float64, Nullable: true},
	{Name: "holdout_score", Type: types.Float64, Nullable: true}, {Name: "fit_seconds", Type: types.Float64},
}

func mlTrainProcedures(e *Engine) []gms.ExternalStoredProcedureDetails {
	return []gms.ExternalStoredProcedureDetails{
		{Name: "ml_train", Function: e.mlTrain, Schema: trainResultSchema},
		{Name: "ml_search", Function: e.mlSearch, Schema: append(slices.Clone(trainResultSchema), &gms.Column{Name: "trials", Type: types.Int64})},
		{Name: "ml_deploy", Function: e.mlDeploy, Schema: gms.Schema{
			{Name: "model", Type: types.LongText}, {Name: "alias", Type: types.LongText}, {Name: "version", Type: types.Int64}}},
	}
}

// trainOptions are the keys of ml_train's JSON that are not hyper-parameters.
type trainOptions struct {
	cfg     ml.Config
	folds   int
	holdout float64
}

var trainOptionKeys = []string{"scaler", "imputer", "task", "cv", "holdout", "seed"}

// parseTrainOptions reads ml_train's JSON: scaler, imputer, task, cv (folds), holdout (the
// fraction held out), seed; every other key is a hyper-parameter of the algorithm.
func parseTrainOptions(algorithm, hyper string) (*trainOptions, error) {
	o := &trainOptions{cfg: ml.Config{Algorithm: strings.ToLower(strings.TrimSpace(algorithm)), Params: map[string]any{}}, folds: 5, holdout: 0.2}
	if strings.TrimSpace(hyper) == "" {
		hyper = "{}"
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(hyper), &m); err != nil || m == nil {
		return nil, mlArgError("the hyper-parameters must be a JSON object such as '{\"C\": 0.5, \"scaler\": \"standard\"}': %v", err)
	}
	str := func(k string) (string, error) {
		s, ok := m[k].(string)
		if !ok {
			return "", mlArgError("%q must be a string, got %v", k, m[k])
		}
		return s, nil
	}
	num := func(k string) (float64, error) {
		f, ok := m[k].(float64)
		if !ok {
			return 0, mlArgError("%q must be a number, got %v", k, m[k])
		}
		return f, nil
	}
	for k, v := range m {
		var err error
		switch k {
		case "scaler":
			o.cfg.Scaler, err = str(k)
			if err == nil && !slices.Contains([]string{"none", "standard", "minmax"}, o.cfg.Scaler) {
				err = mlArgError("scaler %q; choose from: none, standard, minmax", o.cfg.Scaler)
			}
		case "imputer":
			o.cfg.Imputer, err = str(k)
			if err == nil && !slices.Contains([]string{"mean", "median", "most_frequent"}, o.cfg.Imputer) {
				err = mlArgError("imputer %q; choose from: mean, median, most_frequent", o.cfg.Imputer)
			}
		case "task":
			var t string
			t, err = str(k)
			o.cfg.Task = ml.Task(strings.ToLower(t))
		case "cv":
			var f float64
			if f, err = num(k); err == nil {
				if f != math.Trunc(f) || f < 2 || f > 100 {
					err = mlArgError("cv is the number of folds, an integer from 2 to 100; got %v", v)
				}
				o.folds = int(f)
			}
		case "holdout":
			if o.holdout, err = num(k); err == nil && (o.holdout <= 0 || o.holdout >= 1) {
				err = mlArgError("holdout is the fraction of rows held out, between 0 and 1 exclusive; got %v", v)
			}
		case "seed":
			var f float64
			if f, err = num(k); err == nil {
				if f != math.Trunc(f) || f < 0 || f > math.MaxUint32 {
					err = mlArgError("seed must be an integer from 0 to %d; got %v", uint32(math.MaxUint32), v)
				}
				o.cfg.Seed = uint64(f)
			}
		default:
			o.cfg.Params[k] = v
		}
		if err != nil {
			return nil, err
		}
	}
	// An unknown algorithm or hyper-parameter is refused here, listing the valid ones, before
	// the query runs.
	names, err := ml.ParamNames(o.cfg.Algorithm)
	if err != nil {
		return nil, mlArgError("%v", err)
	}
	for k := range o.cfg.Params {
		if !slices.Contains(names, k) {
			return nil, mlArgError("%s has no hyper-parameter %q; its hyper-parameters are: %s; ml_train also takes: %s",
				o.cfg.Algorithm, k, strings.Join(names, ", "), strings.Join(trainOptionKeys, ", "))
		}
	}
	return o, nil
}

// trained is one trained model with its scores, ready to be recorded.
type trained struct {
	model       *ml.Model
	bytes       []byte
	metric      string
	cv          *ml.CVResult
	holdout     ml.Metrics
	fitSeconds  float64
	folds       int
	holdoutFrac float64
	extraParams map[string]string // logged besides the model's own (search settings)
}

// trainAndScore cross-validates cfg, scores it on a held-out split and trains it on every row.
func trainAndScore(f *ml.Frame, o *trainOptions) (*trained, error) {
	cv, err := ml.CrossValidate(f, o.cfg, ml.CVOptions{Folds: o.folds, Seed: o.cfg.Seed})
	if err != nil {
		return nil, mlArgError("%v", err)
	}
	_, hold, err := ml.Holdout(f, o.cfg, o.holdout, o.cfg.Seed)
	if err != nil {
		return nil, mlArgError("%v", err)
	}
	start := time.Now()
	m, err := ml.Train(f, o.cfg)
	if err != nil {
		return nil, mlArgError("%v", err)
	}
	fit := time.Since(start).Seconds()
	b, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	return &trained{model: m, bytes: b, metric: cv.Metric, cv: cv, holdout: hold, fitSeconds: fit, folds: o.folds, holdoutFrac: o.holdout}, nil
}

// mlTrain is CALL ml_train('model', 'SELECT …', 'label', 'algorithm'[, '{json}']).
func (e *Engine) mlTrain(ctx *gms.Context, name, query, label, algorithm string, hyper ...string) (gms.RowIter, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 256 {
		return nil, mlArgError("a model name must have 1 to 256 characters")
	}
	if len(hyper) > 1 {
		return nil, mlArgError("ml_train takes a model name, a query, a label column, an algorithm and optional JSON hyper-parameters")
	}
	o, err := parseTrainOptions(algorithm, strings.Join(hyper, ""))
	if err != nil {
		return nil, err
	}
	if err := e.ensureML(); err != nil {
		return nil, err
	}
	f, err := e.mlFrame(ctx, query, strings.TrimSpace(label))
	if err != nil {
		return nil, err
	}
	tr, err := trainAndScore(f, o)
	if err != nil {
		return nil, err
	}
	exp, err := e.mlModelExperiment(ctx, name)
	if err != nil {
		return nil, err
	}
	runID, version, err := e.mlRecordModel(ctx, exp, name, "", "ml_train "+tr.model.Algorithm, tr)
	if err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(tr.resultRow(name, version, runID)), nil
}

func (tr *trained) resultRow(name string, version int64, runID string) gms.Row {
	return gms.Row{name, version, runID, tr.metric, nullIfNaN(tr.cv.Score), nullIfNaN(tr.holdout[tr.metric]), tr.fitSeconds}
}

func nullIfNaN(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

// mlModelExperiment is the experiment a model's runs go to: the one named like the model,
// created on first use.
func (e *Engine) mlModelExperiment(ctx *gms.Context, name string) (string, error) {
	rows, err := e.mlQuery(ctx, "SELECT experiment_id, lifecycle_stage FROM ml.experiments WHERE name = "+sqlString(name))
	if err != nil {
		return "", err
	}
	if len(rows) > 0 {
		if rows[0][1] != "active" {
			return "", mlArgError("experiment %q, where model %q logs its runs, is deleted; restore it with ml_restore_experiment", name, name)
		}
		return fmt.Sprint(rows[0][0]), nil
	}
	iter, err := e.mlCreateExperiment(ctx, name)
	if err != nil {
		return "", err
	}
	r, err := firstRow(ctx, iter)
	if err != nil {
		return "", err
	}
	return fmt.Sprint(r[0]), nil
}

func firstRow(ctx *gms.Context, iter gms.RowIter) (gms.Row, error) {
	defer iter.Close(ctx)
	return iter.Next(ctx)
}

// mlStartChildRun starts a run of experiment exp; parent, when set, makes it a child run
// (MLflow's nested runs: the column and the mlflow.parentRunId tag).
func (e *Engine) mlStartChildRun(ctx *gms.Context, exp, runName, parent string) (runID, artifactURI string, err error) {
	return e.mlStartChildRunWithID(ctx, exp, runName, parent, newRunID())
}

func (e *Engine) mlStartChildRunWithID(ctx *gms.Context, exp, runName, parent, id string) (runID, artifactURI string, err error) {
	iter, err := e.mlStartRunWithID(ctx, exp, runName, id)
	if err != nil {
		return "", "", err
	}
	r, err := firstRow(ctx, iter)
	if err != nil {
		return "", "", err
	}
	runID = fmt.Sprint(r[0])
	row, err := e.mlRun(ctx, runID, false)
	if err != nil {
		return "", "", err
	}
	artifactURI = fmt.Sprint(row[8])
	if parent != "" {
		upd := row.Copy()
		upd[10] = parent
		if err := e.mlEdit(ctx, "runs", func(ed *editor) error { return ed.Update(ctx, row, upd) }); err != nil {
			return "", "", err
		}
		if _, err := e.mlSetTag(ctx, runID, "mlflow.parentRunId", parent); err != nil {
			return "", "", err
		}
	}
	return runID, artifactURI, nil
}

// mlLogRun logs params and metrics on a run in one batch per table.
func (e *Engine) mlLogRun(ctx *gms.Context, runID string, params map[string]string, metrics map[string]float64, steps []mlStep) error {
	type kv struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	type metric struct {
		Key   string `json:"key"`
		Value string `json:"value"`
		Step  int64  `json:"step"`
	}
	var body struct {
		Params  []kv     `json:"params"`
		Metrics []metric `json:"metrics"`
	}
	for _, k := range sortedKeys(params) {
		body.Params = append(body.Params, kv{k, params[k]})
	}
	for _, k := range sortedKeys(metrics) {
		body.Metrics = append(body.Metrics, metric{k, strconv.FormatFloat(metrics[k], 'g', -1, 64), 0})
	}
	for _, s := range steps {
		body.Metrics = append(body.Metrics, metric{s.key, strconv.FormatFloat(s.value, 'g', -1, 64), s.step})
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	iter, err := e.mlLogBatch(ctx, runID, string(b))
	if err != nil {
		return err
	}
	return iter.Close(ctx)
}

type mlStep struct {
	key   string
	step  int64
	value float64
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// trainParams are the params a trained model's run logs: its settings and every resolved
// hyper-parameter.
func (tr *trained) params() map[string]string {
	m := tr.model
	p := map[string]string{"algorithm": m.Algorithm, "task": string(m.Task), "scaler": m.Scaler, "imputer": m.Imputer,
		"seed": strconv.FormatUint(m.Seed, 10), "cv": strconv.Itoa(tr.folds), "holdout": strconv.FormatFloat(tr.holdoutFrac, 'g', -1, 64)}
	if m.Label != "" {
		p["label"] = m.Label
	}
	for k, v := range m.Params {
		p[k] = fmt.Sprint(v)
	}
	for k, v := range tr.extraParams {
		p[k] = v
	}
	return p
}

// metrics are the run's metrics: cross-validated means under their names, the held-out
// split's with a holdout_ prefix, and fit_time in seconds.
func (tr *trained) metrics() map[string]float64 {
	out := map[string]float64{"fit_time": tr.fitSeconds}
	for k, v := range tr.cv.Metrics {
		out[k] = v
	}
	for k, v := range tr.holdout {
		out["holdout_"+k] = v
	}
	return out
}

// mlRecordModel logs a finished training as a run (a child of parent when set), saves its
// model file as the run's artifact model/model.json, registers the next version of the
// model and adds its ml.models row. It returns the run and the version.
func (e *Engine) mlRecordModel(ctx *gms.Context, exp, name, parent, runName string, tr *trained) (string, int64, error) {
	if e.cfg.Warehouse == nil {
		return "", 0, fmt.Errorf("ml: this engine has no warehouse store to save model %s in", name)
	}
	runID, artifacts, err := e.mlStartChildRun(ctx, exp, runName, parent)
	if err != nil {
		return "", 0, err
	}
	// The file goes to storage first, before the rows that name it: a failure leaves at most
	// the run just started (inside an explicit transaction; an autocommit call rolls back),
	// never a model version without its file. A commit that fails after leaves an
	// unreferenced file under the run's artifacts, which nothing reads.
	uri := artifacts + "/" + modelArtifact
	if err := e.putArtifact(ctx, uri, tr.bytes); err != nil {
		return "", 0, err
	}
	var steps []mlStep
	for i, s := range tr.cv.Scores {
		steps = append(steps, mlStep{"cv_fold_" + tr.metric, int64(i), s})
	}
	if err := e.mlLogRun(ctx, runID, tr.params(), tr.metrics(), steps); err != nil {
		return "", 0, err
	}
	version, err := e.mlRegisterVersion(ctx, name, runID, uri, tr)
	if err != nil {
		return "", 0, err
	}
	if _, err := e.mlEndRun(ctx, runID, "FINISHED"); err != nil {
		return "", 0, err
	}
	return runID, version, nil
}

// mlRegisterVersion registers the next version of name for runID and adds its ml.models row.
func (e *Engine) mlRegisterVersion(ctx *gms.Context, name, runID, uri string, tr *trained) (int64, error) {
	iter, err := e.mlRegisterModel(ctx, name, runID, uri)
	if err != nil {
		return 0, err
	}
	r, err := firstRow(ctx, iter)
	if err != nil {
		return 0, err
	}
	version := r[1].(int64)
	hp, err := json.Marshal(tr.model.Params)
	if err != nil {
		return 0, err
	}
	row := gms.Row{name, int32(version), tr.model.Algorithm, string(tr.model.Task), string(hp), tr.metric,
		nullIfNaN(tr.cv.Score), nullIfNaN(tr.holdout[tr.metric]), runID, uri, time.Now().UTC()}
	if err := e.mlEdit(ctx, "models", func(ed *editor) error { return ed.Insert(ctx, row) }); err != nil {
		return 0, err
	}
	return version, nil
}

// artifactKey maps an mlflow-artifacts:/ URI to its key in the warehouse.
func artifactKey(uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, ArtifactScheme)
	if !ok {
		return "", mlArgError("model artifact %q is not stored by this daemon (want %s…); lakehoused saves models only under its own artifact store", uri, ArtifactScheme)
	}
	return artifactKeyPrefix + strings.TrimPrefix(rest, "/"), nil
}

func (e *Engine) putArtifact(ctx context.Context, uri string, data []byte) error {
	if e.cfg.Warehouse == nil {
		return fmt.Errorf("ml: this engine has no warehouse store to save model %s in", uri)
	}
	key, err := artifactKey(uri)
	if err != nil {
		return err
	}
	return e.cfg.Warehouse.Put(ctx, key, data)
}

func (e *Engine) getArtifact(ctx context.Context, uri string) ([]byte, error) {
	if e.cfg.Warehouse == nil {
		return nil, fmt.Errorf("ml: this engine has no warehouse store to load model %s from", uri)
	}
	key, err := artifactKey(uri)
	if err != nil {
		return nil, err
	}
	return e.cfg.Warehouse.Get(ctx, key)
}

// mlDeploy is CALL ml_deploy('model', 'best_score' | 'most_recent' | version): the alias
// `production`, which ml_predict uses, moves to that version. Rolling back is deploying the
// previous version.
func (e *Engine) mlDeploy(ctx *gms.Context, name, strategy string) (gms.RowIter, error) {
	rows, err := e.mlQuery(ctx, "SELECT version, metric, cv_score FROM ml.models WHERE name = "+sqlString(name)+" ORDER BY version")
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, mlNotFound("model %q has no trained versions; train one with ml_train or ml_search", name)
	}
	var version int64
	switch s := strings.ToLower(strings.TrimSpace(strategy)); s {
	case "most_recent":
		version = toInt64(rows[len(rows)-1][0])
	case "best_score":
		best := math.NaN()
		for _, r := range rows {
			score, ok := r[2].(float64)
			if !ok {
				continue
			}
			if slices.Contains([]string{"log_loss", "mse", "rmse", "mae"}, fmt.Sprint(r[1])) {
				score = -score
			}
			if math.IsNaN(best) || score > best {
				best, version = score, toInt64(r[0])
			}
		}
		if math.IsNaN(best) {
			return nil, mlArgError("no version of model %q has a score; deploy a version number instead", name)
		}
	default:
		v, err := strconv.ParseInt(s, 10, 32)
		if err != nil || v < 1 {
			return nil, mlArgError("ml_deploy takes 'best_score', 'most_recent' or a version number, not %q", strategy)
		}
		version = v
	}
	iter, err := e.mlSetAlias(ctx, name, "production", version)
	if err != nil {
		return nil, err
	}
	if err := iter.Close(ctx); err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{name, "production", version}), nil
}
