package system_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehoused/lakehoused/server"
)

// Training, search, prediction and deployment in SQL (issue 7), through the MySQL driver
// against a daemon, on the shared datasets loaded with read_csv.

// startMLNode starts a node that may read the ML datasets, in dir ("" for a new one).
// Its connections use database d: GMS plans table functions such as ml_predict_table in
// the current database.
func startMLNode(t *testing.T, dir string) *node {
	t.Helper()
	ml := filepath.Join(testdataDir(t), "ml")
	n := startNodeWith(t, dir, func(cfg *server.Config) { cfg.ImportDirs = []string{ml} })
	mustExec(t, n.conn(""), "CREATE DATABASE IF NOT EXISTS d")
	return n
}

// loadDataset creates table d.<name> from shared/testdata/ml/<name>.csv.
func loadDataset(t *testing.T, c *sql.Conn, name string) {
	t.Helper()
	mustExec(t, c, fmt.Sprintf("CREATE TABLE d.%s AS SELECT * FROM read_csv('file://%s')", name, filepath.Join(testdataDir(t), "ml", name+".csv")))
}

// trainResult is the row ml_train and ml_search return.
type trainResult struct {
	model               string
	version             int64
	runID, metric       string
	cv, holdout, fitSec float64
	trials              int64
}

func callTrain(t *testing.T, c *sql.Conn, q string) trainResult {
	t.Helper()
	var r trainResult
	var hold sql.NullFloat64
	dest := []any{&r.model, &r.version, &r.runID, &r.metric, &r.cv, &hold, &r.fitSec}
	if strings.HasPrefix(q, "CALL ml_search") {
		dest = append(dest, &r.trials)
	}
	if err := c.QueryRowContext(context.Background(), q).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	r.holdout = hold.Float64
	if !hold.Valid {
		r.holdout = math.NaN()
	}
	t.Logf("%s → version %d, %s cv %.4f holdout %.4f, fit %.3fs, trials %d", r.model, r.version, r.metric, r.cv, r.holdout, r.fitSec, r.trials)
	return r
}

func queryFloat(t *testing.T, c *sql.Conn, q string) float64 {
	t.Helper()
	var f float64
	if err := c.QueryRowContext(context.Background(), q).Scan(&f); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return f
}

const irisFeatures = "sepal_length, sepal_width, petal_length, petal_width"

func TestMLTrainPredictDeploy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startMLNode(t, dir)
	c := n.conn("d")
	loadDataset(t, c, "iris")
	loadDataset(t, c, "diabetes")

	// Classification: scaled logistic regression on iris.
	iris := callTrain(t, c, `CALL ml_train('iris', 'SELECT * FROM d.iris', 'species', 'logistic_regression', '{"scaler": "standard", "seed": 0}')`)
	if iris.version != 1 || iris.metric != "accuracy" || iris.cv < 0.95 || iris.holdout < 0.85 || len(iris.runID) != 32 {
		t.Fatalf("iris logistic regression: %+v; want version 1, accuracy ≥ 0.95", iris)
	}
	// Regression: OLS on diabetes; scikit-learn's figure is r2 0.489.
	diab := callTrain(t, c, `CALL ml_train('diabetes', 'SELECT * FROM d.diabetes', 'progression', 'linear_regression')`)
	if diab.metric != "r2" || math.Abs(diab.cv-0.489) > 0.02 {
		t.Fatalf("diabetes linear regression: %s %.4f, want r2 0.489 ± 0.02", diab.metric, diab.cv)
	}

	// ml.models lists both, the run is logged with its params and metrics, the version registered.
	expectRows(t, c, "SELECT name, version, algorithm, task, metric, JSON_EXTRACT(hyperparameters, '$.C'), run_id = '"+iris.runID+"', artifact_uri LIKE 'mlflow-artifacts:/%/model/model.json' FROM ml.models ORDER BY name",
		"diabetes\t1\tlinear_regression\tregression\tr2\tNULL\t0\t1",
		"iris\t1\tlogistic_regression\tclassification\taccuracy\t1\t1\t1")
	expectRows(t, c, "SELECT r.status, e.name FROM ml.runs r JOIN ml.experiments e ON e.experiment_id = r.experiment_id WHERE r.run_id = '"+iris.runID+"'", "FINISHED\tiris")
	expectRows(t, c, "SELECT `key`, value FROM ml.params WHERE run_id = '"+iris.runID+"' AND `key` IN ('scaler', 'algorithm', 'cv', 'label') ORDER BY `key`",
		"algorithm\tlogistic_regression", "cv\t5", "label\tspecies", "scaler\tstandard")
	expectRows(t, c, "SELECT COUNT(DISTINCT `key`) FROM ml.metrics WHERE run_id = '"+iris.runID+"' AND `key` IN ('accuracy', 'precision', 'recall', 'f1', 'roc_auc', 'log_loss', 'fit_time', 'holdout_accuracy')", "8")
	expectRows(t, c, "SELECT COUNT(DISTINCT `key`) FROM ml.metrics WHERE run_id = '"+diab.runID+"' AND `key` IN ('r2', 'mse', 'rmse', 'mae', 'fit_time')", "5")
	if got := queryFloat(t, c, "SELECT value FROM ml.latest_metrics WHERE run_id = '"+iris.runID+"' AND `key` = 'accuracy'"); math.Abs(got-iris.cv) > 1e-12 {
		t.Fatalf("logged accuracy %v, returned cv_score %v", got, iris.cv)
	}
	expectRows(t, c, "SELECT version, run_id = '"+iris.runID+"', source LIKE '%/"+iris.runID+"/artifacts/model/model.json' FROM ml.model_versions WHERE name = 'iris'", "1\t1\t1")

	// Scalar prediction row by row, and the table function; they agree, and fit iris.
	accuracy := "SELECT AVG(ml_predict('iris', " + irisFeatures + ") = species) FROM d.iris"
	if acc := queryFloat(t, c, accuracy); acc < 0.95 {
		t.Fatalf("ml_predict accuracy on iris %.3f", acc)
	}
	expectRows(t, c, "SELECT ml_predict('iris', 5.1, 3.5, 1.4, 0.2), ml_predict('iris', 6.7, 3.0, 5.2, 2.3)", "setosa\tvirginica")
	rows, err := c.QueryContext(context.Background(), "SELECT * FROM ml_predict_table('iris', 'SELECT * FROM d.iris') LIMIT 1")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	rows.Close()
	if got := strings.Join(cols, ","); got != "sepal_length,sepal_width,petal_length,petal_width,species,predicted_species,probability_setosa,probability_versicolor,probability_virginica" {
		t.Fatalf("ml_predict_table columns: %s", got)
	}
	expectRows(t, c, "SELECT COUNT(*), SUM(predicted_species = ml_predict('iris', "+irisFeatures+")), "+
		"SUM(ABS(probability_setosa + probability_versicolor + probability_virginica - 1) < 1e-9) FROM ml_predict_table('iris', 'SELECT * FROM d.iris')",
		"150\t150\t150")
	// The label is not needed to predict.
	expectRows(t, c, "SELECT predicted_species FROM ml_predict_table('iris', 'SELECT "+irisFeatures+" FROM d.iris WHERE sepal_length = 7.9')", "virginica")

	// ml_evaluate on the training rows; ml_feature_info describes any query.
	evalRows := queryRows(t, c, "SELECT metric, ROUND(value, 3) FROM ml_evaluate('iris', 'SELECT * FROM d.iris') ORDER BY metric")
	if len(evalRows) != 7 || !strings.HasPrefix(evalRows[0], "accuracy\t0.9") || evalRows[6] != "rows\t150" {
		t.Fatalf("ml_evaluate: %q", evalRows)
	}
	expectRows(t, c, "SELECT column_name, kind, min, max, ROUND(mean, 3), ROUND(`stddev`, 3), null_count, distinct_count FROM ml_feature_info('SELECT sepal_length, species, NULLIF(petal_width, 0.2) AS pw FROM d.iris')",
		"sepal_length\tnumeric\t4.3\t7.9\t5.843\t0.828\t0\t35",
		"species\tstring\tNULL\tNULL\tNULL\tNULL\t0\t3",
		"pw\tnumeric\t0.1\t2.5\t1.439\t0.65\t29\t21")

	// Clustering: no label; silhouette is the metric, clusters are numbers, and setosa
	// (linearly separable from the rest) is one cluster.
	km := callTrain(t, c, `CALL ml_train('clusters', 'SELECT `+irisFeatures+` FROM d.iris', '', 'kmeans', '{"n_clusters": 3, "scaler": "standard"}')`)
	if km.metric != "silhouette" || km.cv < 0.3 || km.cv > 0.7 {
		t.Fatalf("kmeans on iris: %+v", km)
	}
	expectRows(t, c, "SELECT COUNT(DISTINCT k), MIN(k), MAX(k) FROM (SELECT ml_predict('clusters', "+irisFeatures+") AS k FROM d.iris) x", "3	0	2")
	expectRows(t, c, "SELECT COUNT(DISTINCT predicted_cluster), COUNT(*) FROM ml_predict_table('clusters', 'SELECT * FROM d.iris') WHERE species = 'setosa'", "1	50")
	expectRows(t, c, "SELECT metric FROM ml_evaluate('clusters', 'SELECT * FROM d.iris')", "silhouette", "rows")

	// Deploying: version 2 (k-NN on raw features) differs from version 1 (OLS); ml_predict
	// follows the alias production, else the latest version.
	knn := callTrain(t, c, `CALL ml_train('diabetes', 'SELECT * FROM d.diabetes', 'progression', 'knn', '{"n_neighbors": 15}')`)
	if knn.version != 2 {
		t.Fatalf("second diabetes model is version %d", knn.version)
	}
	predict := "SELECT ROUND(ml_predict('diabetes', age, sex, bmi, bp, s1, s2, s3, s4, s5, s6), 6) FROM d.diabetes LIMIT 1"
	latest := queryRows(t, c, predict)
	expectRows(t, c, "CALL ml_deploy('diabetes', 1)", "diabetes\tproduction\t1")
	v1 := queryRows(t, c, predict)
	if latest[0] == v1[0] {
		t.Fatalf("versions 1 and 2 predict the same %s; the test cannot tell them apart", v1[0])
	}
	expectRows(t, c, "CALL ml_deploy('diabetes', 'most_recent')", "diabetes\tproduction\t2")
	expectRows(t, c, predict, latest...)
	best := "2"
	if diab.cv > knn.cv {
		best = "1"
	}
	expectRows(t, c, "CALL ml_deploy('diabetes', 'best_score')", "diabetes\tproduction\t"+best)
	expectRows(t, c, "SELECT alias, version FROM ml.model_aliases WHERE name = 'diabetes'", "production\t"+best)
	expectRows(t, c, "CALL ml_deploy('diabetes', 1)", "diabetes\tproduction\t1")
	expectErr(t, c, "CALL ml_deploy('diabetes', 7)", 1032, "has no version 7")
	expectErr(t, c, "CALL ml_deploy('diabetes', 'newest')", 1210, "'best_score', 'most_recent' or a version number")
	expectErr(t, c, "CALL ml_deploy('nope', 'most_recent')", 1032, "no trained versions")

	// After a restart the models load from their artifacts and predict the same.
	irisPreds := queryRows(t, c, "SELECT predicted_species, ROUND(probability_virginica, 12) FROM ml_predict_table('iris', 'SELECT * FROM d.iris')")
	c.Close()
	n.stop()
	n2 := startMLNode(t, dir)
	c2 := n2.conn("d")
	expectRows(t, c2, "SELECT predicted_species, ROUND(probability_virginica, 12) FROM ml_predict_table('iris', 'SELECT * FROM d.iris')", irisPreds...)
	expectRows(t, c2, predict, v1...)
	expectRows(t, c2, "SELECT COUNT(*) FROM ml.models", "4")
}

func TestMLSearchSQL(t *testing.T) {
	t.Parallel()
	n := startMLNode(t, "")
	c := n.conn("d")
	loadDataset(t, c, "breast_cancer")
	loadDataset(t, c, "iris")

	// A trial left RUNNING by a worker that died (its lease expired) goes back to the queue:
	// the next search of the study marks it FAILED and runs its parameters first.
	mustExec(t, c, "CALL ml_create_experiment('setup')") // creates the ml tables
	mustExec(t, c, `INSERT INTO ml.trials (study, trial, state, params, started, worker, lease_expires) VALUES
		('bc', 0, 'RUNNING', '{"algorithm": "naive_bayes", "scaler": "none"}', NOW(6), 'dead-node/1', '2020-01-01 00:00:00')`)

	res := callTrain(t, c, `CALL ml_search('bc', 'SELECT * FROM d.breast_cancer', 'diagnosis', 'auto', '{"max_trials": 20, "parallelism": 2}')`)
	if res.version != 1 || res.metric != "accuracy" || res.cv < 0.97 || res.trials != 20 {
		t.Fatalf("breast_cancer automatic search: %+v; want accuracy ≥ 0.97 over 20 trials", res)
	}
	expectRows(t, c, "SELECT state, error LIKE 'lease expired: worker dead-node/1 stopped renewing it; its parameters run again as trial 1' FROM ml.trials WHERE study = 'bc' AND trial = 0",
		"FAILED\t1")
	expectRows(t, c, "SELECT state, JSON_UNQUOTE(JSON_EXTRACT(params, '$.algorithm')) FROM ml.trials WHERE study = 'bc' AND trial = 1", "COMPLETE\tnaive_bayes")
	expectRows(t, c, "SELECT COUNT(*), COUNT(DISTINCT run_id), SUM(state IN ('COMPLETE', 'PRUNED', 'FAILED')), SUM(finished >= started), COUNT(DISTINCT search_run_id) FROM ml.trials WHERE study = 'bc' AND trial > 0",
		"20\t20\t20\t20\t1")
	// The best trial's value is the search's score, and each trial is a finished child run
	// of the study's run, which logged the space.
	if best := queryFloat(t, c, "SELECT MAX(value) FROM ml.trials WHERE study = 'bc' AND state = 'COMPLETE'"); math.Abs(best-res.cv) > 1e-12 {
		t.Fatalf("best trial value %v, ml_search returned %v", best, res.cv)
	}
	expectRows(t, c, "SELECT COUNT(*), SUM(r.status IN ('FINISHED', 'KILLED', 'FAILED')), COUNT(DISTINCT r.parent_run_id) FROM ml.trials t JOIN ml.runs r ON r.run_id = t.run_id WHERE t.study = 'bc' AND t.trial > 0",
		"20\t20\t1")
	expectRows(t, c, "SELECT p.status, COUNT(*) FROM ml.trials t JOIN ml.runs p ON p.run_id = t.search_run_id WHERE t.study = 'bc' AND t.trial > 0 GROUP BY p.status", "FINISHED\t20")
	expectRows(t, c, "SELECT r.parent_run_id = t.search_run_id FROM ml.runs r JOIN ml.trials t ON t.study = 'bc' AND t.trial = 1 WHERE r.run_id = '"+res.runID+"'", "1")
	expectRows(t, c, "SELECT COUNT(*) FROM ml.params p JOIN ml.trials t ON t.search_run_id = p.run_id AND t.trial = 1 WHERE p.`key` = 'space'", "1")
	expectRows(t, c, "SELECT name, version, cv_score >= 0.97 FROM ml.models", "bc\t1\t1")
	if acc := queryFloat(t, c, "SELECT AVG(predicted_diagnosis = diagnosis) FROM ml_predict_table('bc', 'SELECT * FROM d.breast_cancer')"); acc < 0.95 {
		t.Fatalf("the searched model predicts its training rows with accuracy %.3f", acc)
	}

	// A trial that fails (more neighbours than training rows) is recorded FAILED with its
	// error, and the study goes on.
	grid := callTrain(t, c, `CALL ml_search('grid', 'SELECT * FROM d.iris', 'species', '{"algorithm": ["knn"], "knn": {"n_neighbors": [3, 500]}}', '{"sampler": "grid", "parallelism": 1}')`)
	if grid.trials != 2 || grid.cv < 0.9 {
		t.Fatalf("grid search: %+v", grid)
	}
	expectRows(t, c, "SELECT trial, state, value IS NULL, error <> '' FROM ml.trials WHERE study = 'grid' ORDER BY trial",
		"0\tCOMPLETE\t0\tNULL", "1\tFAILED\t1\t1")
	expectRows(t, c, "SELECT r.status FROM ml.trials t JOIN ml.runs r ON r.run_id = t.run_id WHERE t.study = 'grid' ORDER BY t.trial", "FINISHED", "FAILED")
}

func TestMLTrainBadInput(t *testing.T) {
	t.Parallel()
	n := startMLNode(t, "")
	c := n.conn("d")
	loadDataset(t, c, "iris")
	mustExec(t, c, "CREATE TABLE d.nolabel (x DOUBLE, y DOUBLE)")
	mustExec(t, c, "INSERT INTO d.nolabel VALUES (1, NULL), (2, NULL)")
	good := callTrain(t, c, `CALL ml_train('iris', 'SELECT * FROM d.iris', 'species', 'naive_bayes')`)
	count := func() string {
		return strings.Join(queryRows(t, c, "SELECT (SELECT COUNT(*) FROM ml.models), (SELECT COUNT(*) FROM ml.runs), (SELECT COUNT(*) FROM ml.model_versions), (SELECT COUNT(*) FROM ml.trials)"), "")
	}
	before := count()
	cases := []struct{ q, want string }{
		{`CALL ml_train('m', 'SELECT * FROM d.iris', 'species', 'xgboost')`, `unknown algorithm "xgboost"; algorithms are: decision_tree, elastic_net, gbdt`},
		{`CALL ml_train('m', 'SELECT * FROM d.iris', 'species', 'knn', '{"k": 3}')`, `knn has no hyper-parameter "k"; its hyper-parameters are: n_neighbors, weights`},
		{`CALL ml_train('m', 'SELECT * FROM d.iris', 'species', 'knn', '{"n_neighbors": "many"}')`, "n_neighbors"},
		{`CALL ml_train('m', 'SELECT * FROM d.iris', 'species', 'knn', '{"scaler": "robust"}')`, "choose from: none, standard, minmax"},
		{`CALL ml_train('m', 'SELECT * FROM d.iris', 'kind', 'knn')`, `no label column "kind"; its columns are: sepal_length, sepal_width, petal_length, petal_width, species`},
		{`CALL ml_train('m', 'SELECT * FROM d.nolabel', 'y', 'linear_regression')`, `label column "y" is NULL in all 2 rows`},
		{`CALL ml_train('m', 'SELECT * FROM d.iris', 'species', 'linear_regression')`, "regression and needs a numeric label"},
		{`CALL ml_train('m', 'SELECT * FROM d.iris', 'species', 'ridge', '{"task": "regression"}')`, "regression needs a numeric label"},
		{`CALL ml_train('m', 'SELECT * FROM d.iris WHERE sepal_length > 100', 'species', 'knn')`, "returned no rows"},
		{`CALL ml_train('m', 'SELECT * FROM d.iris', 'species', 'knn', 'n_neighbors=3')`, "must be a JSON object"},
		{`CALL ml_search('m', 'SELECT * FROM d.iris', 'species', '{}', '{}')`, "empty"},
		{`CALL ml_search('m', 'SELECT * FROM d.iris', 'species', '{"algorithm": ["ridge"]}', '{}')`, "ridge does not do classification"},
		{`CALL ml_search('m', 'SELECT * FROM d.iris', 'species', '{"algorithm": ["knn"], "knn": {"n_neighbors": {"int": [5, 1]}}}', '{}')`, "n_neighbors"},
		{`CALL ml_search('m', 'SELECT * FROM d.iris', 'species', '{"algorithm": ["gbdt"], "knn": {"n_neighbors": [3]}}', '{}')`, "not in the algorithm list"},
		{`CALL ml_search('m', 'SELECT * FROM d.iris', 'species', 'auto', '{"trials": 5}')`, "ml_search has no option \"trials\"; options are: sampler, metric"},
		{`CALL ml_search('m', 'SELECT * FROM d.iris', 'species', 'auto', '{"metric": "r2"}')`, "metric \"r2\" is not computed for classification"},
		{`SELECT ml_predict('iris', 1, 2, 3)`, "takes 4 features, got 3; features are: sepal_length (numeric), sepal_width (numeric)"},
		{`SELECT ml_predict('iris', 1, 2, 3, 'wide')`, "(string), but feature 4 \"petal_width\" is numeric"},
		{`SELECT ml_predict('nope', 1)`, `model "nope" does not exist`},
		{`SELECT * FROM ml_predict_table('iris', 'SELECT sepal_length, sepal_width FROM d.iris')`, `needs feature "petal_length", which the query does not have`},
		{`SELECT * FROM ml_predict_table('iris', 'SELECT sepal_length, sepal_width, petal_length, species AS petal_width FROM d.iris')`, `column "petal_width" is`},
		{`SELECT * FROM ml_evaluate('iris', 'SELECT ` + irisFeatures + ` FROM d.iris')`, `needs its label column "species"`},
		{`SELECT * FROM ml_feature_info('DELETE FROM d.iris')`, "must only read"},
		{`CALL ml_train('m', 'SELECT sepal_length, sepal_length AS SEPAL_LENGTH, species FROM d.iris', 'species', 'knn')`, "two columns named"},
	}
	for _, tc := range cases {
		_, err := c.ExecContext(context.Background(), tc.q)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.q, err, tc.want)
			continue
		}
		if code := errCode(err); code != 1210 && code != 1032 {
			t.Errorf("%s: error %d (%v), want 1210 or 1032", tc.q, code, err)
		}
	}
	// Nothing was written by the failed calls, and the connection still works.
	if after := count(); after != before {
		t.Fatalf("failed calls changed the tracking tables: %s → %s", before, after)
	}
	expectRows(t, c, "SELECT ml_predict('iris', 5.1, 3.5, 1.4, 0.2)", "setosa")
	if good.version != 1 {
		t.Fatalf("version %d", good.version)
	}
}

// TestMLTrainTypedColumns: an ENUM label trains and predicts by its names (the engine
// carries ENUM values as indexes), and an integer computed by EXTRACT is a real feature.
func TestMLTrainTypedColumns(t *testing.T) {
	t.Parallel()
	n := startMLNode(t, "")
	c := n.conn("d")
	mustExec(t, c, "CREATE TABLE d.e (id INT PRIMARY KEY, ts DATETIME, kind ENUM('low','high'))")
	var vals []string
	for i := range 40 {
		kind := "low"
		if i%24 >= 12 {
			kind = "high"
		}
		vals = append(vals, fmt.Sprintf("(%d, '2024-01-01 %02d:00:00', '%s')", i, i%24, kind))
	}
	mustExec(t, c, "INSERT INTO d.e VALUES "+strings.Join(vals, ","))
	callTrain(t, c, `CALL ml_train('hours', 'SELECT EXTRACT(HOUR FROM ts) AS hr, kind FROM d.e', 'kind', 'decision_tree', '{"cv": 2}')`)
	expectRows(t, c, "SELECT ml_predict('hours', 3), ml_predict('hours', 20)", "low\thigh")
	expectRows(t, c, "SELECT MIN(min), MAX(max) FROM ml_feature_info('SELECT EXTRACT(HOUR FROM ts) AS hr FROM d.e')", "0\t23")
}
