package system_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestMLTracking logs a run the way a training script would, through the ml_* procedures,
// and reads it back with plain SQL; bad input gets MLflow's error codes.
func TestMLTracking(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	c := n.conn("")
	expectRows(t, c, "CALL ml_create_experiment('churn')", "1")
	expectRows(t, c, "CALL ml_create_experiment('fraud')", "2")
	expectErr(t, c, "CALL ml_create_experiment('churn')", 1062, "RESOURCE_ALREADY_EXISTS")
	expectErr(t, c, "CALL ml_start_run('no such experiment', 'x')", 1032, "RESOURCE_DOES_NOT_EXIST")

	var runID, expID string
	if err := c.QueryRowContext(context.Background(), "CALL ml_start_run('churn', 'baseline')").Scan(&runID, &expID, new(string), new(string), new(int64)); err != nil {
		t.Fatal(err)
	}
	if len(runID) != 32 || expID != "1" {
		t.Fatalf("ml_start_run returned run %q in experiment %q", runID, expID)
	}
	call := func(q string, args ...any) { mustExec(t, c, fmt.Sprintf(q, args...)) }
	call("CALL ml_log_param('%s', 'lr', '0.01')", runID)
	call("CALL ml_log_param('%s', 'lr', '0.01')", runID) // the same value again is fine
	expectErr(t, c, fmt.Sprintf("CALL ml_log_param('%s', 'lr', '0.02')", runID), 1210, "params cannot change")
	call("CALL ml_log_param('%s', 'depth', '6')", runID)
	for step := 0; step < 100; step++ {
		call("CALL ml_log_metric('%s', 'loss', %g, %d)", runID, 1.0/float64(step+1), step)
	}
	call("CALL ml_log_metric('%s', 'grad_norm', 'NaN', 7)", runID)
	call("CALL ml_log_metric('%s', 'grad_norm', '-Infinity', 8)", runID)
	call("CALL ml_set_tag('%s', 'team', 'risk')", runID)
	call("CALL ml_set_tag('%s', 'team', 'growth')", runID) // the last value wins
	expectErr(t, c, fmt.Sprintf("CALL ml_log_metric('%s', '%s', 1)", runID, strings.Repeat("k", 251)), 1210, "the limit is 250")
	expectErr(t, c, fmt.Sprintf("CALL ml_log_param('%s', 'big', '%s')", runID, strings.Repeat("v", 8001)), 1210, "the limit is 8000")
	expectErr(t, c, fmt.Sprintf("CALL ml_log_metric('%s', 'loss', 'fast', 1)", runID), 1210, "not a number")
	expectErr(t, c, "CALL ml_log_metric('0123456789abcdef0123456789abcdef', 'loss', 1)", 1032, "RESOURCE_DOES_NOT_EXIST")

	// Plain SQL over the tables: joins, aggregates, what MLflow's search cannot say.
	expectRows(t, c, "SELECT COUNT(*), MIN(step), MAX(step), ROUND(MIN(value), 2) FROM ml.metrics WHERE run_id = '"+runID+"' AND `key` = 'loss'",
		"100\t0\t99\t0.01")
	expectRows(t, c, "SELECT step, value FROM ml.metrics WHERE `key` = 'grad_norm' ORDER BY step", "7\tNaN", "8\t-Inf")
	expectRows(t, c, "SELECT e.name, r.name, p.value, g.value FROM ml.runs r JOIN ml.experiments e ON e.experiment_id = r.experiment_id "+
		"JOIN ml.params p ON p.run_id = r.run_id AND p.`key` = 'depth' JOIN ml.run_tags g ON g.run_id = r.run_id AND g.`key` = 'team'",
		"churn\tbaseline\t6\tgrowth")
	expectRows(t, c, "SELECT status FROM ml.runs WHERE run_id = '"+runID+"'", "RUNNING")
	// latest_metrics: the last value by step, and the extremes ever logged.
	expectRows(t, c, "SELECT `key`, ROUND(value, 2), step, ROUND(min_value, 2), max_value FROM ml.latest_metrics WHERE run_id = '"+runID+"' AND `key` = 'loss'",
		"loss\t0.01\t99\t0.01\t1")
	expectRows(t, c, "SELECT value, step FROM ml.latest_metrics WHERE `key` = 'grad_norm'", "-Inf\t8")
	expectRows(t, c, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'ml' AND table_name = 'latest_metrics'", "1")
	// The view follows new commits, and a transaction sees its own uncommitted rows in it
	// (and nobody else does).
	call("CALL ml_log_metric('%s', 'loss', 0.005, 100)", runID)
	expectRows(t, c, "SELECT value, step FROM ml.latest_metrics WHERE run_id = '"+runID+"' AND `key` = 'loss'", "0.005\t100")
	other := n.conn("")
	mustExec(t, c, "BEGIN")
	call("INSERT INTO ml.metrics VALUES ('%s', 'loss', NULL, 1700000000000, 101)", runID)
	expectRows(t, c, "SELECT value, step, min_value FROM ml.latest_metrics WHERE run_id = '"+runID+"' AND `key` = 'loss'", "NULL\t101\t0.005")
	expectRows(t, other, "SELECT value, step FROM ml.latest_metrics WHERE run_id = '"+runID+"' AND `key` = 'loss'", "0.005\t100")
	mustExec(t, c, "ROLLBACK")
	expectRows(t, c, "SELECT value, step FROM ml.latest_metrics WHERE run_id = '"+runID+"' AND `key` = 'loss'", "0.005\t100")

	expectErr(t, c, fmt.Sprintf("CALL ml_end_run('%s', 'DONE')", runID), 1210, "FINISHED, FAILED or KILLED")
	expectRows(t, c, fmt.Sprintf("CALL ml_end_run('%s')", runID), "FINISHED")
	expectRows(t, c, "SELECT status, end_time >= start_time FROM ml.runs WHERE run_id = '"+runID+"'", "FINISHED\t1")
	expectErr(t, c, fmt.Sprintf("CALL ml_log_metric('%s', 'loss', 1, 100)", runID), 1210, "is FINISHED")

	// The tables are Delta tables like any other: each logged metric was one commit.
	expectRows(t, c, "SELECT COUNT(*) >= 102 FROM lake_history('ml.metrics') WHERE operation = 'WRITE'", "1")
	// A failed call changed nothing: the rejected param value is not there.
	expectRows(t, c, "SELECT value FROM ml.params WHERE run_id = '"+runID+"' AND `key` = 'lr'", "0.01")
	expectRows(t, c, "SELECT name FROM ml.experiments ORDER BY CAST(experiment_id AS SIGNED)", "Default", "churn", "fraud")
}

func TestMLBatchDeleteAndRegistry(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	c := n.conn("")
	var runID string
	if err := c.QueryRowContext(context.Background(), "CALL ml_start_run('Default', '')").Scan(&runID, new(string), new(any), new(string), new(int64)); err != nil {
		t.Fatal(err)
	}
	batch := `{"params": [{"key": "lr", "value": "0.1"}, {"key": "layers", "value": "3"}],
		"metrics": [{"key": "acc", "value": 0.5, "step": 0, "timestamp": 1700000000000}, {"key": "acc", "value": 0.75, "step": 1},
		            {"key": "acc", "value": "NaN", "step": 2}],
		"tags": [{"key": "mlflow.source.name", "value": "train.py"}]}`
	expectRows(t, c, fmt.Sprintf("CALL ml_log_batch('%s', '%s')", runID, batch), "logged 2 params, 3 metrics, 1 tags")
	expectRows(t, c, "SELECT COUNT(*) FROM ml.metrics WHERE run_id = '"+runID+"'", "3")
	expectRows(t, c, "SELECT timestamp FROM ml.metrics WHERE run_id = '"+runID+"' AND step = 0", "1700000000000")
	// A batch is checked whole before anything is written.
	expectErr(t, c, fmt.Sprintf(`CALL ml_log_batch('%s', '{"metrics": [{"key": "acc", "value": 1, "step": 3}], "params": [{"key": "lr", "value": "0.2"}]}')`, runID), 1210, "params cannot change")
	expectRows(t, c, "SELECT COUNT(*) FROM ml.metrics WHERE run_id = '"+runID+"'", "3")
	expectErr(t, c, fmt.Sprintf(`CALL ml_log_batch('%s', '{"metricz": []}')`, runID), 1210, "unknown field")

	// Soft delete: the run stays in the table, marked; logging to it is refused until restored.
	expectRows(t, c, fmt.Sprintf("CALL ml_delete_run('%s')", runID), "deleted")
	expectRows(t, c, "SELECT lifecycle_stage FROM ml.runs WHERE run_id = '"+runID+"'", "deleted")
	expectErr(t, c, fmt.Sprintf("CALL ml_log_metric('%s', 'acc', 1)", runID), 1210, "is deleted")
	expectRows(t, c, fmt.Sprintf("CALL ml_restore_run('%s')", runID), "active")
	mustExec(t, c, fmt.Sprintf("CALL ml_log_metric('%s', 'acc', 0.9, 3)", runID))
	expectErr(t, c, "CALL ml_delete_run('0123456789abcdef0123456789abcdef')", 1032, "does not exist")

	// Model registry: versions count up per name; aliases move.
	expectRows(t, c, fmt.Sprintf("CALL ml_register_model('churn-model', '%s', 'runs:/%s/model')", runID, runID), "churn-model\t1")
	expectRows(t, c, fmt.Sprintf("CALL ml_register_model('churn-model', '%s', 'runs:/%s/model2')", runID, runID), "churn-model\t2")
	expectRows(t, c, "CALL ml_set_alias('churn-model', 'champion', 1)", "churn-model\tchampion\t1")
	expectRows(t, c, "CALL ml_set_alias('churn-model', 'champion', 2)", "churn-model\tchampion\t2")
	expectRows(t, c, "SELECT a.alias, v.version, v.source FROM ml.model_aliases a JOIN ml.model_versions v ON v.name = a.name AND v.version = a.version",
		"champion\t2\truns:/"+runID+"/model2")
	expectErr(t, c, "CALL ml_set_alias('churn-model', 'champion', 7)", 1032, "no version 7")
	expectErr(t, c, "CALL ml_set_alias('churn-model', 'latest', 1)", 1210, "reserved")
	expectErr(t, c, "CALL ml_register_model('m', 'nope', 's')", 1032, "does not exist")
	expectRows(t, c, "SELECT name FROM ml.registered_models", "churn-model")
}
