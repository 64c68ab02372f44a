package sql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	"github.com/google/uuid"
)

// ML tracking as tables (MLflow's model): experiments, runs, params, metrics and tags are
// ordinary Delta tables in the reserved database `ml`, written by ml_* procedures. Each call
// is one statement of the caller's transaction, so with autocommit it is one commit per
// table it writes, and metric appends from many clients are group-committed.

// mlDatabase is the reserved database of the tracking tables.
const mlDatabase = "ml"

// MLflow's limits (its SQL store's column sizes).
const (
	mlMaxKey        = 250
	mlMaxParamValue = 8000
	mlMaxTagValue   = 8000
	mlMaxName       = 500
)

// mlTables are the tracking tables, created on first use. Column names follow MLflow's SQL
// store; times are milliseconds since the epoch, as MLflow's clients send them.
var mlTables = []string{
	"CREATE TABLE IF NOT EXISTS ml.experiments (experiment_id VARCHAR(32) PRIMARY KEY, name VARCHAR(500) NOT NULL, " +
		"artifact_location TEXT, lifecycle_stage VARCHAR(32) NOT NULL, creation_time BIGINT, last_update_time BIGINT)",
	"CREATE TABLE IF NOT EXISTS ml.experiment_tags (experiment_id VARCHAR(32) NOT NULL, `key` VARCHAR(250) NOT NULL, value TEXT, " +
		"PRIMARY KEY (experiment_id, `key`))",
	"CREATE TABLE IF NOT EXISTS ml.runs (run_id VARCHAR(32) PRIMARY KEY, experiment_id VARCHAR(32) NOT NULL, name VARCHAR(250), " +
		"status VARCHAR(9) NOT NULL, start_time BIGINT, end_time BIGINT, user_id VARCHAR(256), source TEXT, artifact_uri TEXT, " +
		"lifecycle_stage VARCHAR(20) NOT NULL, parent_run_id VARCHAR(32))",
	"CREATE TABLE IF NOT EXISTS ml.params (run_id VARCHAR(32) NOT NULL, `key` VARCHAR(250) NOT NULL, value VARCHAR(8000) NOT NULL, " +
		"PRIMARY KEY (run_id, `key`))",
	// The full history: appends only, no key, so concurrent loggers share group commits.
	"CREATE TABLE IF NOT EXISTS ml.metrics (run_id VARCHAR(32) NOT NULL, `key` VARCHAR(250) NOT NULL, value DOUBLE, " +
		"timestamp BIGINT NOT NULL, step BIGINT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS ml.run_tags (run_id VARCHAR(32) NOT NULL, `key` VARCHAR(250) NOT NULL, value TEXT, " +
		"PRIMARY KEY (run_id, `key`))",
	"CREATE TABLE IF NOT EXISTS ml.registered_models (name VARCHAR(256) PRIMARY KEY, description TEXT, creation_time BIGINT, " +
		"last_updated_time BIGINT)",
	"CREATE TABLE IF NOT EXISTS ml.model_versions (name VARCHAR(256) NOT NULL, version INT NOT NULL, run_id VARCHAR(32), source TEXT, " +
		"status VARCHAR(20), description TEXT, creation_time BIGINT, PRIMARY KEY (name, version))",
	"CREATE TABLE IF NOT EXISTS ml.model_aliases (name VARCHAR(256) NOT NULL, alias VARCHAR(256) NOT NULL, version INT NOT NULL, " +
		"PRIMARY KEY (name, alias))",
	mlModelsTable,
	mlTrialsTable,
}

type mlState struct {
	mlMu    sync.Mutex
	mlReady bool

	// latest caches ml.latest_metrics for one committed version of ml.metrics: the
	// scoreboard and runs/search read it several times per page while nothing is logged.
	latestMu      sync.Mutex
	latestVersion string
	latest        []gms.Row

	// models caches trained models loaded for prediction (ml_predict.go).
	models modelCache
}

// ensureML creates the ml database, its tables and the Default experiment (id 0) once.
func (e *Engine) ensureML() error {
	e.mlMu.Lock()
	defer e.mlMu.Unlock()
	if e.mlReady {
		return nil
	}
	run := func(q string) error {
		_, _, err := e.Query(context.Background(), "", q)
		return err
	}
	if err := run("CREATE DATABASE IF NOT EXISTS ml"); err != nil {
		return fmt.Errorf("ml: creating database ml: %w", err)
	}
	for _, q := range mlTables {
		if err := run(q); err != nil {
			return fmt.Errorf("ml: %s: %w", q, err)
		}
	}
	now := time.Now().UnixMilli()
	if err := run(fmt.Sprintf("INSERT IGNORE INTO ml.experiments VALUES ('0', 'Default', '%s0', 'active', %d, %d)", ArtifactScheme, now, now)); err != nil {
		return fmt.Errorf("ml: the Default experiment: %w", err)
	}
	e.mlReady = true
	return nil
}

// mlError is an MLflow error: its code (RESOURCE_DOES_NOT_EXIST, …) leads the message,
// with the MySQL error number closest to it.
func mlError(num int, code, format string, args ...any) error {
	state := "HY000"
	if num == mysql.ERDupEntry {
		state = "23000"
	}
	return mysql.NewSQLError(num, state, "%s: %s", code, fmt.Sprintf(format, args...))
}

func mlNotFound(format string, args ...any) error {
	return mlError(mysql.ERKeyNotFound, "RESOURCE_DOES_NOT_EXIST", format, args...)
}

func mlInvalid(format string, args ...any) error {
	return mlError(mysql.ERWrongArguments, "INVALID_PARAMETER_VALUE", format, args...)
}

// mlTable opens a tracking table for this statement.
func (e *Engine) mlTable(ctx *gms.Context, name string) (*Table, error) {
	if err := e.ensureML(); err != nil {
		return nil, err
	}
	t, ok, err := e.lookupTable(ctx, mlDatabase, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("ml: table ml.%s is missing (was it dropped?)", name)
	}
	return t, nil
}

// mlEdit runs fn as one statement's changes to table name: all or nothing.
func (e *Engine) mlEdit(ctx *gms.Context, name string, fn func(ed *editor) error) error {
	t, err := e.mlTable(ctx, name)
	if err != nil {
		return err
	}
	ed, err := t.editor(ctx)
	if err != nil {
		return err
	}
	ed.StatementBegin(ctx)
	if err := fn(ed); err != nil {
		_ = ed.DiscardChanges(ctx, err)
		return err
	}
	return ed.StatementComplete(ctx)
}

// mlGet reads the row of table name with the given key values, as this transaction sees it.
func (e *Engine) mlGet(ctx *gms.Context, name string, key ...any) (gms.Row, bool, error) {
	t, err := e.mlTable(ctx, name)
	if err != nil {
		return nil, false, err
	}
	ed, err := t.editor(ctx)
	if err != nil {
		return nil, false, err
	}
	ed.w.begin()
	defer ed.w.discard()
	var b []byte
	for _, k := range key {
		b = appendKeyValue(b, k)
	}
	return ed.existing(ctx, string(b))
}

// mlQuery runs a query in the caller's transaction and returns its rows.
func (e *Engine) mlQuery(ctx *gms.Context, q string) ([]gms.Row, error) {
	if err := e.ensureML(); err != nil {
		return nil, err
	}
	node, err := e.sqle.AnalyzeQuery(ctx, q)
	if err != nil {
		return nil, err
	}
	iter, err := e.sqle.Analyzer.ExecBuilder.Build(ctx, node, nil)
	if err != nil {
		return nil, err
	}
	defer iter.Close(ctx)
	var rows []gms.Row
	for {
		r, err := iter.Next(ctx)
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
}

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}

func checkKey(what, k string) error {
	if k == "" {
		return mlInvalid("the %s key must not be empty", what)
	}
	if n := len([]rune(k)); n > mlMaxKey {
		return mlInvalid("the %s key %q… has %d characters; the limit is %d", what, string([]rune(k)[:20]), n, mlMaxKey)
	}
	return nil
}

func mlProcedures(e *Engine) []gms.ExternalStoredProcedureDetails {
	str := func(names ...string) gms.Schema {
		s := make(gms.Schema, len(names))
		for i, n := range names {
			s[i] = &gms.Column{Name: n, Type: types.LongText, Nullable: true}
		}
		return s
	}
	return []gms.ExternalStoredProcedureDetails{
		{Name: "ml_create_experiment", Function: e.mlCreateExperiment, Schema: str("experiment_id")},
		{Name: "ml_start_run", Function: e.mlStartRun, Schema: gms.Schema{
			{Name: "run_id", Type: types.LongText}, {Name: "experiment_id", Type: types.LongText},
			{Name: "name", Type: types.LongText, Nullable: true}, {Name: "status", Type: types.LongText},
			{Name: "start_time", Type: types.Int64},
		}},
		{Name: "ml_log_param", Function: e.mlLogParam, Schema: str("status")},
		{Name: "ml_log_metric", Function: e.mlLogMetric, Schema: str("status")},
		{Name: "ml_set_tag", Function: e.mlSetTag, Schema: str("status")},
		{Name: "ml_end_run", Function: e.mlEndRun, Schema: str("status")},
		{Name: "ml_log_batch", Function: e.mlLogBatch, Schema: str("status")},
		{Name: "ml_delete_run", Function: e.mlSetLifecycle("deleted"), Schema: str("lifecycle_stage")},
		{Name: "ml_restore_run", Function: e.mlSetLifecycle("active"), Schema: str("lifecycle_stage")},
		{Name: "ml_delete_experiment", Function: e.mlExperimentLifecycle("deleted"), Schema: str("lifecycle_stage")},
		{Name: "ml_restore_experiment", Function: e.mlExperimentLifecycle("active"), Schema: str("lifecycle_stage")},
		{Name: "ml_rename_experiment", Function: e.mlRenameExperiment, Schema: str("name")},
		{Name: "ml_set_experiment_tag", Function: e.mlSetExperimentTag, Schema: str("status")},
		{Name: "ml_register_model", Function: e.mlRegisterModel, Schema: gms.Schema{
			{Name: "name", Type: types.LongText}, {Name: "version", Type: types.Int64}}},
		{Name: "ml_create_model", Function: e.mlCreateModel, Schema: str("name")},
		{Name: "ml_delete_alias", Function: e.mlDeleteAlias, Schema: str("status")},
		{Name: "ml_set_alias", Function: e.mlSetAlias, Schema: gms.Schema{
			{Name: "name", Type: types.LongText}, {Name: "alias", Type: types.LongText}, {Name: "version", Type: types.Int64}}},
	}
}

// mlCreateExperiment is CALL ml_create_experiment('name'[, 'artifact location']).
func (e *Engine) mlCreateExperiment(ctx *gms.Context, name string, args ...string) (gms.RowIter, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > mlMaxName {
		return nil, mlInvalid("an experiment name must have 1 to %d characters", mlMaxName)
	}
	if len(args) > 1 {
		return nil, mlInvalid("ml_create_experiment takes a name and an optional artifact location")
	}
	rows, err := e.mlQuery(ctx, "SELECT experiment_id FROM ml.experiments WHERE name = "+sqlString(name))
	if err != nil {
		return nil, err
	}
	if len(rows) > 0 {
		return nil, mlError(mysql.ERDupEntry, "RESOURCE_ALREADY_EXISTS", "experiment %q already exists (id %v)", name, rows[0][0])
	}
	// Ids are integers as in MLflow's SQL store; two concurrent creates compute the same
	// one from the same snapshot, and the key makes the second fail (1213), so names stay
	// unique too.
	rows, err = e.mlQuery(ctx, "SELECT COALESCE(MAX(CAST(experiment_id AS SIGNED)), 0) + 1 FROM ml.experiments")
	if err != nil {
		return nil, err
	}
	id := fmt.Sprint(rows[0][0])
	loc := ArtifactScheme + id
	if len(args) == 1 && strings.TrimSpace(args[0]) != "" {
		loc = strings.TrimSpace(args[0])
	}
	now := time.Now().UnixMilli()
	err = e.mlEdit(ctx, "experiments", func(ed *editor) error {
		return ed.Insert(ctx, gms.Row{id, name, loc, "active", now, now})
	})
	if err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{id}), nil
}

// ArtifactScheme prefixes artifact locations served by this daemon, as MLflow's
// --serve-artifacts does: clients send the files to /api/2.0/mlflow-artifacts/artifacts/<path>
// and the daemon keeps them in the warehouse.
const ArtifactScheme = "mlflow-artifacts:/"

// mlExperimentRow is the experiments row with this id, in any lifecycle stage.
func (e *Engine) mlExperimentRow(ctx *gms.Context, id string) (gms.Row, error) {
	old, ok, err := e.mlGet(ctx, "experiments", id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, mlNotFound("experiment %q does not exist", id)
	}
	return old, nil
}

// mlExperimentLifecycle is ml_delete_experiment / ml_restore_experiment: MLflow's soft
// delete of an experiment, which takes its runs along. The runs change first, in their own
// commit: a failure between the two leaves the experiment as it was, and the call can be
// repeated.
func (e *Engine) mlExperimentLifecycle(stage string) func(ctx *gms.Context, id string) (gms.RowIter, error) {
	return func(ctx *gms.Context, id string) (gms.RowIter, error) {
		old, err := e.mlExperimentRow(ctx, id)
		if err != nil {
			return nil, err
		}
		if id == "0" && stage == "deleted" {
			return nil, mlInvalid("the Default experiment (id 0) cannot be deleted")
		}
		if old[3] == stage {
			return gms.RowsToRowIter(gms.Row{stage}), nil
		}
		from := "active"
		if stage == "active" {
			from = "deleted"
		}
		runs, err := e.mlQuery(ctx, "SELECT * FROM ml.runs WHERE experiment_id = "+sqlString(id)+" AND lifecycle_stage = "+sqlString(from))
		if err != nil {
			return nil, err
		}
		if len(runs) > 0 {
			err = e.mlEdit(ctx, "runs", func(ed *editor) error {
				for _, r := range runs {
					upd := r.Copy()
					upd[9] = stage
					if err := ed.Update(ctx, r, upd); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		upd := old.Copy()
		upd[3], upd[5] = stage, time.Now().UnixMilli()
		if err := e.mlEdit(ctx, "experiments", func(ed *editor) error { return ed.Update(ctx, old, upd) }); err != nil {
			return nil, err
		}
		return gms.RowsToRowIter(gms.Row{stage}), nil
	}
}

// mlRenameExperiment is CALL ml_rename_experiment(id, 'new name').
func (e *Engine) mlRenameExperiment(ctx *gms.Context, id, name string) (gms.RowIter, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > mlMaxName {
		return nil, mlInvalid("an experiment name must have 1 to %d characters", mlMaxName)
	}
	old, err := e.mlExperimentRow(ctx, id)
	if err != nil {
		return nil, err
	}
	rows, err := e.mlQuery(ctx, "SELECT experiment_id FROM ml.experiments WHERE name = "+sqlString(name)+" AND experiment_id <> "+sqlString(id))
	if err != nil {
		return nil, err
	}
	if len(rows) > 0 {
		return nil, mlError(mysql.ERDupEntry, "RESOURCE_ALREADY_EXISTS", "experiment %q already exists (id %v)", name, rows[0][0])
	}
	upd := old.Copy()
	upd[1], upd[5] = name, time.Now().UnixMilli()
	if err := e.mlEdit(ctx, "experiments", func(ed *editor) error { return ed.Update(ctx, old, upd) }); err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{name}), nil
}

// mlSetExperimentTag is CALL ml_set_experiment_tag(id, key, value).
func (e *Engine) mlSetExperimentTag(ctx *gms.Context, id, key, value string) (gms.RowIter, error) {
	if err := checkKey("tag", key); err != nil {
		return nil, err
	}
	if n := len([]rune(value)); n > mlMaxTagValue {
		return nil, mlInvalid("tag %q has a value of %d characters; the limit is %d", key, n, mlMaxTagValue)
	}
	exp, err := e.mlExperimentRow(ctx, id)
	if err != nil {
		return nil, err
	}
	if exp[3] != "active" {
		return nil, mlInvalid("experiment %q is deleted", id)
	}
	err = e.mlEdit(ctx, "experiment_tags", func(ed *editor) error { return upsert(ctx, ed, gms.Row{id, key, value}, 2) })
	if err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{"set"}), nil
}

// mlExperiment finds an experiment by id or by name.
func (e *Engine) mlExperiment(ctx *gms.Context, ref string) (gms.Row, error) {
	rows, err := e.mlQuery(ctx, fmt.Sprintf("SELECT experiment_id, name, artifact_location, lifecycle_stage FROM ml.experiments WHERE experiment_id = %s OR name = %s ORDER BY experiment_id = %s DESC",
		sqlString(ref), sqlString(ref), sqlString(ref)))
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, mlNotFound("no experiment with id or name %q", ref)
	}
	if rows[0][3] != "active" {
		return nil, mlInvalid("experiment %q is deleted", ref)
	}
	return rows[0], nil
}

// mlStartRun is CALL ml_start_run('experiment id or name', 'run name').
func (e *Engine) mlStartRun(ctx *gms.Context, experiment, name string) (gms.RowIter, error) {
	return e.mlStartRunWithID(ctx, experiment, name, newRunID())
}

// newRunID is a run id as MLflow makes them: a UUID's 32 hex digits.
func newRunID() string { return strings.ReplaceAll(uuid.NewString(), "-", "") }

// mlStartRunWithID starts a run whose id the caller chose (ml_search names a trial's run
// before the run is written).
func (e *Engine) mlStartRunWithID(ctx *gms.Context, experiment, name, id string) (gms.RowIter, error) {
	exp, err := e.mlExperiment(ctx, experiment)
	if err != nil {
		return nil, err
	}
	if len([]rune(name)) > mlMaxKey {
		return nil, mlInvalid("a run name has at most %d characters", mlMaxKey)
	}
	now := time.Now().UnixMilli()
	var runName any = name
	if name == "" {
		runName = nil
	}
	artifacts := fmt.Sprintf("%v/%s/artifacts", exp[2], id)
	err = e.mlEdit(ctx, "runs", func(ed *editor) error {
		return ed.Insert(ctx, gms.Row{id, exp[0], runName, "RUNNING", now, nil, ctx.Client().User, nil, artifacts, "active", nil})
	})
	if err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{id, exp[0], runName, "RUNNING", now}), nil
}

// mlRun is the run row, checked to be one that can still be logged to.
func (e *Engine) mlRun(ctx *gms.Context, runID string, forLogging bool) (gms.Row, error) {
	r, ok, err := e.mlGet(ctx, "runs", runID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, mlNotFound("run %q does not exist", runID)
	}
	if r[9] != "active" {
		return nil, mlInvalid("run %q is deleted; restore it with ml_restore_run first", runID)
	}
	if forLogging && r[3] != "RUNNING" && r[3] != "SCHEDULED" {
		return nil, mlInvalid("run %q is %v; it takes no more params, metrics or tags", runID, r[3])
	}
	return r, nil
}

// upsert replaces the row whose key is the first keyCols values of row, or inserts it.
func upsert(ctx *gms.Context, ed *editor, row gms.Row, keyCols int) error {
	var k []byte
	for _, v := range row[:keyCols] {
		k = appendKeyValue(k, v)
	}
	if old, ok, err := ed.existing(ctx, string(k)); err != nil {
		return err
	} else if ok {
		if err := ed.Delete(ctx, old); err != nil {
			return err
		}
	}
	return ed.Insert(ctx, row)
}

// mlLogParam is CALL ml_log_param(run_id, key, value): write-once, as in MLflow.
func (e *Engine) mlLogParam(ctx *gms.Context, runID, key, value string) (gms.RowIter, error) {
	if err := checkKey("param", key); err != nil {
		return nil, err
	}
	if n := len([]rune(value)); n > mlMaxParamValue {
		return nil, mlInvalid("param %q has a value of %d characters; the limit is %d", key, n, mlMaxParamValue)
	}
	if _, err := e.mlRun(ctx, runID, true); err != nil {
		return nil, err
	}
	old, ok, err := e.mlGet(ctx, "params", runID, key)
	if err != nil {
		return nil, err
	}
	if ok {
		if old[2] == value {
			return gms.RowsToRowIter(gms.Row{"unchanged"}), nil
		}
		return nil, mlInvalid("param %q of run %s was already logged with value %q; params cannot change (log a new run, or use a tag)", key, runID, old[2])
	}
	err = e.mlEdit(ctx, "params", func(ed *editor) error { return ed.Insert(ctx, gms.Row{runID, key, value}) })
	if err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{"logged"}), nil
}

// parseMetric reads a metric value: a number, or NaN / Infinity / -Infinity (which MLflow
// clients send for diverged training), kept as such.
func parseMetric(s string) (float64, error) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "nan":
		return math.NaN(), nil
	case "inf", "+inf", "infinity", "+infinity":
		return math.Inf(1), nil
	case "-inf", "-infinity":
		return math.Inf(-1), nil
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, mlInvalid("metric value %q is not a number (NaN and ±Infinity are allowed)", s)
	}
	return v, nil
}

// mlLogMetric is CALL ml_log_metric(run_id, key, value [, step [, timestamp_ms]]).
func (e *Engine) mlLogMetric(ctx *gms.Context, runID, key, value string, args ...int64) (gms.RowIter, error) {
	if err := checkKey("metric", key); err != nil {
		return nil, err
	}
	v, err := parseMetric(value)
	if err != nil {
		return nil, err
	}
	if len(args) > 2 {
		return nil, mlInvalid("ml_log_metric takes run_id, key, value, and optionally step and timestamp")
	}
	step, ts := int64(0), time.Now().UnixMilli()
	if len(args) > 0 {
		step = args[0]
	}
	if len(args) > 1 {
		ts = args[1]
	}
	if _, err := e.mlRun(ctx, runID, true); err != nil {
		return nil, err
	}
	err = e.mlEdit(ctx, "metrics", func(ed *editor) error { return ed.Insert(ctx, gms.Row{runID, key, v, ts, step}) })
	if err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{"logged"}), nil
}

// mlSetTag is CALL ml_set_tag(run_id, key, value): the last value wins.
func (e *Engine) mlSetTag(ctx *gms.Context, runID, key, value string) (gms.RowIter, error) {
	if err := checkKey("tag", key); err != nil {
		return nil, err
	}
	if n := len([]rune(value)); n > mlMaxTagValue {
		return nil, mlInvalid("tag %q has a value of %d characters; the limit is %d", key, n, mlMaxTagValue)
	}
	if _, err := e.mlRun(ctx, runID, true); err != nil {
		return nil, err
	}
	err := e.mlEdit(ctx, "run_tags", func(ed *editor) error { return upsert(ctx, ed, gms.Row{runID, key, value}, 2) })
	if err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{"set"}), nil
}

// mlEndRun is CALL ml_end_run(run_id [, 'FINISHED' | 'FAILED' | 'KILLED']).
func (e *Engine) mlEndRun(ctx *gms.Context, runID string, args ...string) (gms.RowIter, error) {
	status := "FINISHED"
	if len(args) > 1 {
		return nil, mlInvalid("ml_end_run takes a run id and an optional status")
	}
	if len(args) == 1 {
		status = strings.ToUpper(strings.TrimSpace(args[0]))
	}
	switch status {
	case "FINISHED", "FAILED", "KILLED":
	default:
		return nil, mlInvalid("a run ends as FINISHED, FAILED or KILLED, not %q", status)
	}
	old, err := e.mlRun(ctx, runID, false)
	if err != nil {
		return nil, err
	}
	upd := old.Copy()
	upd[3], upd[5] = status, time.Now().UnixMilli()
	err = e.mlEdit(ctx, "runs", func(ed *editor) error { return ed.Update(ctx, old, upd) })
	if err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{status}), nil
}

// mlLogBatch is CALL ml_log_batch(run_id, '{"params": [{"key":…,"value":…}], "metrics":
// [{"key":…,"value":…,"step":…,"timestamp":…}], "tags": [{"key":…,"value":…}]}'), MLflow's
// log-batch body: everything is checked first, then each table is written in one statement.
func (e *Engine) mlLogBatch(ctx *gms.Context, runID, body string) (gms.RowIter, error) {
	var b struct {
		Params []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"params"`
		Metrics []struct {
			Key       string          `json:"key"`
			Value     json.RawMessage `json:"value"`
			Step      int64           `json:"step"`
			Timestamp *int64          `json:"timestamp"`
		} `json:"metrics"`
		Tags []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"tags"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, mlInvalid("ml_log_batch: the body is not {\"params\": […], \"metrics\": […], \"tags\": […]}: %v", err)
	}
	if n := len(b.Params) + len(b.Metrics) + len(b.Tags); n > 1000+100+100 || len(b.Metrics) > 1000 || len(b.Params) > 100 || len(b.Tags) > 100 {
		return nil, mlInvalid("ml_log_batch takes at most 1000 metrics, 100 params and 100 tags (MLflow's limits), got %d, %d and %d", len(b.Metrics), len(b.Params), len(b.Tags))
	}
	if _, err := e.mlRun(ctx, runID, true); err != nil {
		return nil, err
	}
	now := time.Now().UnixMilli()
	var params, metrics, tags []gms.Row
	seen := map[string]string{}
	for _, p := range b.Params {
		if err := checkKey("param", p.Key); err != nil {
			return nil, err
		}
		if n := len([]rune(p.Value)); n > mlMaxParamValue {
			return nil, mlInvalid("param %q has a value of %d characters; the limit is %d", p.Key, n, mlMaxParamValue)
		}
		if v, dup := seen[p.Key]; dup && v != p.Value {
			return nil, mlInvalid("param %q appears twice in the batch with different values", p.Key)
		}
		seen[p.Key] = p.Value
		old, ok, err := e.mlGet(ctx, "params", runID, p.Key)
		if err != nil {
			return nil, err
		}
		if ok {
			if old[2] != p.Value {
				return nil, mlInvalid("param %q of run %s was already logged with value %q; params cannot change", p.Key, runID, old[2])
			}
			continue
		}
		params = append(params, gms.Row{runID, p.Key, p.Value})
	}
	for _, m := range b.Metrics {
		if err := checkKey("metric", m.Key); err != nil {
			return nil, err
		}
		raw := strings.Trim(string(m.Value), `"`)
		v, err := parseMetric(raw)
		if err != nil {
			return nil, err
		}
		ts := now
		if m.Timestamp != nil {
			ts = *m.Timestamp
		}
		metrics = append(metrics, gms.Row{runID, m.Key, v, ts, m.Step})
	}
	for _, t := range b.Tags {
		if err := checkKey("tag", t.Key); err != nil {
			return nil, err
		}
		if n := len([]rune(t.Value)); n > mlMaxTagValue {
			return nil, mlInvalid("tag %q has a value of %d characters; the limit is %d", t.Key, n, mlMaxTagValue)
		}
		tags = append(tags, gms.Row{runID, t.Key, t.Value})
	}
	insert := func(table string, rows []gms.Row) error {
		if len(rows) == 0 {
			return nil
		}
		return e.mlEdit(ctx, table, func(ed *editor) error {
			for _, r := range rows {
				if err := ed.Insert(ctx, r); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := insert("params", params); err != nil {
		return nil, err
	}
	if err := insert("metrics", metrics); err != nil {
		return nil, err
	}
	if len(tags) > 0 {
		err := e.mlEdit(ctx, "run_tags", func(ed *editor) error {
			for _, r := range tags {
				if err := upsert(ctx, ed, r, 2); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return gms.RowsToRowIter(gms.Row{fmt.Sprintf("logged %d params, %d metrics, %d tags", len(params), len(metrics), len(tags))}), nil
}

// mlSetLifecycle is ml_delete_run / ml_restore_run: MLflow's soft delete.
func (e *Engine) mlSetLifecycle(stage string) func(ctx *gms.Context, runID string) (gms.RowIter, error) {
	return func(ctx *gms.Context, runID string) (gms.RowIter, error) {
		old, ok, err := e.mlGet(ctx, "runs", runID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, mlNotFound("run %q does not exist", runID)
		}
		if old[9] == stage {
			return gms.RowsToRowIter(gms.Row{stage}), nil
		}
		upd := old.Copy()
		upd[9] = stage
		if err := e.mlEdit(ctx, "runs", func(ed *editor) error { return ed.Update(ctx, old, upd) }); err != nil {
			return nil, err
		}
		return gms.RowsToRowIter(gms.Row{stage}), nil
	}
}

// mlRegisterModel is CALL ml_register_model('name', run_id, 'source'): creates the
// registered model when new and adds the next version.
func (e *Engine) mlRegisterModel(ctx *gms.Context, name, runID, source string) (gms.RowIter, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 256 {
		return nil, mlInvalid("a registered model name must have 1 to 256 characters")
	}
	if _, err := e.mlRun(ctx, runID, false); err != nil {
		return nil, err
	}
	now := time.Now().UnixMilli()
	_, exists, err := e.mlGet(ctx, "registered_models", name)
	if err != nil {
		return nil, err
	}
	if !exists {
		if err := e.mlEdit(ctx, "registered_models", func(ed *editor) error {
			return ed.Insert(ctx, gms.Row{name, nil, now, now})
		}); err != nil {
			return nil, err
		}
	}
	rows, err := e.mlQuery(ctx, "SELECT COALESCE(MAX(version), 0) + 1 FROM ml.model_versions WHERE name = "+sqlString(name))
	if err != nil {
		return nil, err
	}
	// The engine types MAX(…) + 1 as it likes (an integer, a decimal): read its text.
	v, err := strconv.ParseFloat(fmt.Sprint(rows[0][0]), 64)
	if err != nil || v < 1 || v > math.MaxInt32 {
		return nil, fmt.Errorf("ml_register_model: next version of %q: %v", name, rows[0][0])
	}
	version := int32(v)
	if err := e.mlEdit(ctx, "model_versions", func(ed *editor) error {
		return ed.Insert(ctx, gms.Row{name, version, runID, source, "READY", nil, now})
	}); err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{name, int64(version)}), nil
}

// mlSetAlias is CALL ml_set_alias('name', 'alias', version): the alias moves to version.
func (e *Engine) mlSetAlias(ctx *gms.Context, name, alias string, version int64) (gms.RowIter, error) {
	if alias == "" || len([]rune(alias)) > 256 || strings.EqualFold(alias, "latest") {
		return nil, mlInvalid("an alias has 1 to 256 characters and is not 'latest' (which is reserved)")
	}
	if _, ok, err := e.mlGet(ctx, "model_versions", name, int32(version)); err != nil {
		return nil, err
	} else if !ok {
		return nil, mlNotFound("registered model %q has no version %d", name, version)
	}
	err := e.mlEdit(ctx, "model_aliases", func(ed *editor) error {
		return upsert(ctx, ed, gms.Row{name, alias, int32(version)}, 2)
	})
	if err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{name, alias, version}), nil
}

// latestMetrics is ml.latest_metrics: per run and key, the last value by step then
// timestamp, with the smallest and largest value ever logged. It is derived from ml.metrics
// on every read, inside the reader's transaction, rather than kept as a second table that
// each logged metric would have to rewrite.
type latestMetrics struct {
	e *Engine
}

const latestMetricsName = "latest_metrics"

var latestMetricsSchema = gms.Schema{
	{Name: "run_id", Type: types.MustCreateString(sqltypes.VarChar, 32, gms.Collation_Default), Source: latestMetricsName},
	{Name: "key", Type: types.MustCreateString(sqltypes.VarChar, 250, gms.Collation_Default), Source: latestMetricsName},
	{Name: "value", Type: types.Float64, Nullable: true, Source: latestMetricsName},
	{Name: "step", Type: types.Int64, Source: latestMetricsName},
	{Name: "timestamp", Type: types.Int64, Source: latestMetricsName},
	{Name: "min_value", Type: types.Float64, Nullable: true, Source: latestMetricsName},
	{Name: "max_value", Type: types.Float64, Nullable: true, Source: latestMetricsName},
}

var _ gms.Table = latestMetrics{}

func (l latestMetrics) Name() string               { return latestMetricsName }
func (l latestMetrics) String() string             { return "ml." + latestMetricsName }
func (l latestMetrics) Schema() gms.Schema         { return latestMetricsSchema }
func (l latestMetrics) Collation() gms.CollationID { return gms.Collation_Default }
func (l latestMetrics) Partitions(*gms.Context) (gms.PartitionIter, error) {
	return gms.PartitionsToPartitionIter(partition{}), nil
}

func (l latestMetrics) PartitionRows(ctx *gms.Context, _ gms.Partition) (gms.RowIter, error) {
	rows, err := l.latestRows(ctx)
	if err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(rows...), nil
}

// mlCreateModel is CALL ml_create_model('name'[, 'description']): a registered model with
// no versions yet (MLflow's registered-models/create).
func (e *Engine) mlCreateModel(ctx *gms.Context, name string, args ...string) (gms.RowIter, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 256 {
		return nil, mlInvalid("a registered model name must have 1 to 256 characters")
	}
	if len(args) > 1 {
		return nil, mlInvalid("ml_create_model takes a name and an optional description")
	}
	if _, ok, err := e.mlGet(ctx, "registered_models", name); err != nil {
		return nil, err
	} else if ok {
		return nil, mlError(mysql.ERDupEntry, "RESOURCE_ALREADY_EXISTS", "registered model %q already exists", name)
	}
	var desc any
	if len(args) == 1 && args[0] != "" {
		desc = args[0]
	}
	now := time.Now().UnixMilli()
	if err := e.mlEdit(ctx, "registered_models", func(ed *editor) error {
		return ed.Insert(ctx, gms.Row{name, desc, now, now})
	}); err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{name}), nil
}

// mlDeleteAlias is CALL ml_delete_alias('name', 'alias').
func (e *Engine) mlDeleteAlias(ctx *gms.Context, name, alias string) (gms.RowIter, error) {
	old, ok, err := e.mlGet(ctx, "model_aliases", name, alias)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, mlNotFound("registered model %q has no alias %q", name, alias)
	}
	if err := e.mlEdit(ctx, "model_aliases", func(ed *editor) error { return ed.Delete(ctx, old) }); err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(gms.Row{"deleted"}), nil
}

// latestRows computes latest_metrics from the metric history: one pass over ml.metrics
// (as this transaction sees it), keeping per run and key the row with the greatest (step,
// timestamp) and the extremes. A window query in the engine took seconds per 100k points.
func (l latestMetrics) latestRows(ctx *gms.Context) ([]gms.Row, error) {
	// A transaction that logged metrics itself sees its own rows: no cache then.
	var committed *Table
	version := ""
	if t, err := l.e.mlTable(ctx, "metrics"); err == nil && t.writes(ctx) == nil && !t.asOf {
		committed, version = t, fmt.Sprintf("%s@%d", t.snap.Metadata.ID, t.snap.Version)
	}
	l.e.latestMu.Lock()
	rows, hit := l.e.latest, version != "" && l.e.latestVersion == version
	l.e.latestMu.Unlock()
	if !hit {
		var err error
		if rows, err = l.computeLatest(ctx, committed); err != nil {
			return nil, err
		}
		if version != "" {
			l.e.latestMu.Lock()
			l.e.latestVersion, l.e.latest = version, rows
			l.e.latestMu.Unlock()
		}
	}
	// The cached rows are shared: the engine gets its own copies.
	out := make([]gms.Row, len(rows))
	for i, r := range rows {
		out[i] = r.Copy()
	}
	return out, nil
}

// computeLatest keeps, per run and key, the last value by step then timestamp, and the
// lowest and highest values. The committed state (committed: ml.metrics as the statement
// sees it) is read from the files directly; a transaction that changed ml.metrics
// (committed nil) reads it through the engine, with its own changes.
func (l latestMetrics) computeLatest(ctx *gms.Context, committed *Table) ([]gms.Row, error) {
	type agg struct {
		last     MetricPoint
		min, max float64
		any      bool
	}
	type rk struct{ run, key string }
	by := map[rk]*agg{}
	var order []rk
	add := func(p MetricPoint) {
		k := rk{p.RunID, p.Key}
		a := by[k]
		if a == nil {
			a = &agg{last: p}
			by[k] = a
			order = append(order, k)
		} else if p.Step > a.last.Step || p.Step == a.last.Step && p.Timestamp >= a.last.Timestamp {
			a.last = p
		}
		if v := p.Value; !p.Null && !math.IsNaN(v) {
			if !a.any || v < a.min {
				a.min = v
			}
			if !a.any || v > a.max {
				a.max = v
			}
			a.any = true
		}
	}
	if committed != nil {
		if err := scanMetrics(ctx, committed, nil, add); err != nil {
			return nil, err
		}
	} else {
		rows, err := l.e.mlQuery(ctx, "SELECT run_id, `key`, value, step, timestamp FROM ml.metrics")
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			p := MetricPoint{RunID: fmt.Sprint(r[0]), Key: fmt.Sprint(r[1]), Step: toInt64(r[3]), Timestamp: toInt64(r[4])}
			if v, ok := r[2].(float64); ok {
				p.Value = v
			} else {
				p.Value, p.Null = math.NaN(), true
			}
			add(p)
		}
	}
	out := make([]gms.Row, 0, len(order))
	for _, k := range order {
		a := by[k]
		row := gms.Row{a.last.RunID, a.last.Key, a.last.Value, a.last.Step, a.last.Timestamp, nil, nil}
		if a.last.Null {
			row[2] = nil
		}
		if a.any {
			row[5], row[6] = a.min, a.max
		}
		out = append(out, row)
	}
	return out, nil
}
