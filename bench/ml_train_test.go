package bench

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/internal/testdata"
)

// BenchmarkMLTrain measures issue 7's figures through SQL: the fit time of every algorithm
// on every dataset (ml_train's fit_seconds: the final fit on all rows, after the 5-fold
// cross-validation and the held-out split, whose wall time is printed beside it), the
// search throughput of ml_search in trials/s with parallelism 1 and 2, and prediction
// throughput of ml_predict_table and ml_predict over 200k+ rows for OLS and a 100-tree
// forest, beside a plain scan of the same rows.
func BenchmarkMLTrain(b *testing.B) {
	onlyPart(b, "mltrain")
	n := startNode(b)
	mustExec(b, n.open(b, "", 1), "CREATE DATABASE IF NOT EXISTS d")
	// Table functions are planned in the current database (GMS), so the connections use d.
	db := n.open(b, "d", 2)
	imp := filepath.Join(n.dataDir, "import")
	if err := os.MkdirAll(imp, 0o755); err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(testdata.Dir(b), "ml")
	datasets := []struct{ name, label, task string }{
		{"iris", "species", ""}, {"wine", "cultivar", "classification"}, {"breast_cancer", "diagnosis", ""},
		{"digits", "digit", "classification"}, {"diabetes", "progression", ""},
	}
	for _, ds := range datasets {
		data, err := os.ReadFile(filepath.Join(src, ds.name+".csv"))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(imp, ds.name+".csv"), data, 0o644); err != nil {
			b.Fatal(err)
		}
		mustExec(b, db, fmt.Sprintf("CREATE TABLE d.%s AS SELECT * FROM read_csv('file://%s/%s.csv')", ds.name, imp, ds.name))
	}
	classifiers := []string{"logistic_regression", "naive_bayes", "knn", "decision_tree", "random_forest", "gbdt", "linear_svm"}
	regressors := []string{"linear_regression", "ridge", "lasso", "elastic_net", "decision_tree", "random_forest", "gbdt", "knn"}
	for i := 0; i < b.N; i++ {
		figures = nil
		for _, ds := range datasets {
			algs := classifiers
			if ds.label == "progression" {
				algs = regressors
			}
			for _, alg := range algs {
				opts := `{"scaler": "standard"`
				if ds.task != "" {
					opts += `, "task": "` + ds.task + `"`
				}
				opts += "}"
				start := time.Now()
				var metric string
				var cv, fit float64
				err := db.QueryRow(fmt.Sprintf("CALL ml_train('%s_%s', 'SELECT * FROM d.%s', '%s', '%s', '%s')", ds.name, alg, ds.name, ds.label, alg, opts)).
					Scan(new(string), new(int64), new(string), &metric, &cv, new(sql.NullFloat64), &fit)
				if err != nil {
					b.Fatalf("ml_train %s on %s: %v", alg, ds.name, err)
				}
				figure("ml_train_fit_%s_%s: fit %s (standard scaler); whole call (5-fold cv + holdout + fit + logging) %s; cv %s %.4f",
					ds.name, alg, ms(time.Duration(fit*float64(time.Second))), ms(time.Since(start)), metric, cv)
			}
		}

		// Search throughput: the same trials (pruning off, so every trial runs its 5 folds)
		// with one worker and with two, on trials that are cheap next to their tracking
		// writes (breast_cancer: a trial is ~20 ms of fitting and ~50 ms of commits to
		// ml.runs, ml.params, ml.metrics, ml.run_tags and ml.trials) and on trials where
		// fitting dominates (digits). The algorithms are single-threaded ones: random
		// forests and gbdt already use every core within one trial.
		for _, sc := range []struct{ ds, label, opts string }{
			{"breast_cancer", "diagnosis", ""},
			{"digits", "digit", `, "task": "classification"`},
		} {
			space := `{"algorithm": ["logistic_regression", "naive_bayes", "knn", "decision_tree"], "scaler": ["none", "standard"], ` +
				`"logistic_regression": {"C": {"log_float": [0.01, 100]}}, "knn": {"n_neighbors": {"int": [1, 15]}}, "decision_tree": {"max_depth": {"int": [2, 10]}}}`
			var rates [2]float64
			for p := 1; p <= 2; p++ {
				start := time.Now()
				var trials int64
				var score float64
				err := db.QueryRow(fmt.Sprintf(`CALL ml_search('%s_search_p%d', 'SELECT * FROM d.%s', '%s', '%s', '{"max_trials": 24, "parallelism": %d, "prune": false%s}')`,
					sc.ds, p, sc.ds, sc.label, space, p, sc.opts)).
					Scan(new(string), new(int64), new(string), new(string), &score, new(sql.NullFloat64), new(float64), &trials)
				if err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				// The trials alone: from the first trial's start to the last one's end.
				var us int64
				if err := db.QueryRow(fmt.Sprintf("SELECT TIMESTAMPDIFF(MICROSECOND, MIN(started), MAX(finished)) FROM ml.trials WHERE study = '%s_search_p%d'", sc.ds, p)).Scan(&us); err != nil {
					b.Fatal(err)
				}
				study := time.Duration(us) * time.Microsecond
				rates[p-1] = float64(trials) / study.Seconds()
				figure("ml_search_%s_parallelism_%d: %d trials in %.2fs = %.1f trials/s (whole call %.2fs: also the study's run, the final fit and holdout, registration); best accuracy %.4f",
					sc.ds, p, trials, study.Seconds(), rates[p-1], d.Seconds(), score)
			}
			figure("ml_search_%s_speedup_2_vs_1: %.2fx in trials/s (goal ≥ 1.8x)", sc.ds, rates[1]/rates[0])
		}

		// Prediction: diabetes repeated to 221,000 rows.
		f, err := os.Create(filepath.Join(imp, "big.csv"))
		if err != nil {
			b.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(src, "diabetes.csv"))
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Fprintln(f, lines[0])
		for r := 0; r < 500; r++ {
			for _, l := range lines[1:] {
				fmt.Fprintln(f, l)
			}
		}
		f.Close()
		mustExec(b, db, "DROP TABLE IF EXISTS d.big")
		mustExec(b, db, fmt.Sprintf("CREATE TABLE d.big AS SELECT * FROM read_csv('file://%s/big.csv')", imp))
		var rows int64
		if err := db.QueryRow("SELECT COUNT(*) FROM d.big").Scan(&rows); err != nil {
			b.Fatal(err)
		}
		mustExec(b, db, `CALL ml_train('pred_linear', 'SELECT * FROM d.diabetes', 'progression', 'linear_regression', '{"cv": 2}')`)
		mustExec(b, db, `CALL ml_train('pred_forest', 'SELECT * FROM d.diabetes', 'progression', 'random_forest', '{"n_estimators": 100, "cv": 2}')`)
		timeQuery := func(q string) time.Duration {
			var best time.Duration
			for r := 0; r < 3; r++ {
				start := time.Now()
				var x sql.NullFloat64
				if err := db.QueryRow(q).Scan(new(int64), &x); err != nil {
					b.Fatalf("%s: %v", q, err)
				}
				if d := time.Since(start); r == 0 || d < best {
					best = d
				}
			}
			return best
		}
		scan := timeQuery("SELECT COUNT(*), SUM(bmi + age + s1) FROM d.big")
		figure("ml_predict_baseline_scan: SELECT COUNT(*), SUM(…) over %d rows: best of 3 %s = %s rows/s", rows, ms(scan), rate(rows, scan))
		for _, m := range []string{"pred_linear", "pred_forest"} {
			d := timeQuery(fmt.Sprintf("SELECT COUNT(*), SUM(predicted_progression) FROM ml_predict_table('%s', 'SELECT * FROM d.big')", m))
			figure("ml_predict_table_%s: %d rows: best of 3 %s = %s rows/s (%.2fx the plain scan's time)", m, rows, ms(d), rate(rows, d), d.Seconds()/scan.Seconds())
			d = timeQuery(fmt.Sprintf("SELECT COUNT(*), SUM(ml_predict('%s', age, sex, bmi, bp, s1, s2, s3, s4, s5, s6)) FROM d.big", m))
			figure("ml_predict_scalar_%s: %d rows: best of 3 %s = %s rows/s", m, rows, ms(d), rate(rows, d))
		}
		fmt.Println("\n=== ML training figures ===")
		for _, f := range figures {
			fmt.Println(f)
		}
	}
}
