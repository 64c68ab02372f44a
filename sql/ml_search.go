package sql

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"

	"github.com/lakehoused/lakehoused/ml"
	"github.com/lakehoused/lakehoused/ml/search"
)

// CALL ml_search: a hyper-parameter search whose trials are rows of ml.trials and child runs
// of the study's run. The runner is ml.Search (ml/search.Study); the table-backed
// search.Store is in ml_trials.go. Trial rows and runs are committed while the study runs (by
// one writer per study that group-commits what is waiting, in internal transactions of their
// own), so other sessions watch a study while it runs, and a worker holds a lease on each
// RUNNING row that it renews by heartbeat. A search that finds RUNNING rows of its study
// whose lease has expired (their worker died) marks them FAILED and runs their parameters
// again first.
//
// What remains for several nodes: here one process samples and runs every trial of a search
// and keeps the study in memory (the table is its durable, visible record, read back only to
// take over expired trials). Workers on other nodes would need Trials to read the table,
// Create to claim trial numbers with a conditional insert (the key (study, trial) already
// makes a second insert of the same number fail with 1213), and a way to join a study that
// another node started.

// searchOptions are ml_search's options JSON.
type searchOptions struct {
	ml.SearchOptions
	holdout float64
}

var searchOptionKeys = []string{"sampler", "metric", "direction", "max_trials", "timeout_s", "parallelism", "cv", "seed", "prune", "task", "holdout"}

func parseSearchOptions(s string) (*searchOptions, error) {
	o := &searchOptions{holdout: 0.2}
	o.MaxTrials, o.Prune = 20, true
	if strings.TrimSpace(s) == "" {
		return o, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		return nil, mlArgError("ml_search options must be a JSON object such as '{\"max_trials\": 30, \"parallelism\": 2}': %v", err)
	}
	intOpt := func(k string, lo, hi float64) (int, error) {
		f, ok := m[k].(float64)
		if !ok || f != math.Trunc(f) || f < lo || f > hi {
			return 0, mlArgError("option %s must be an integer from %g to %g, got %v", k, lo, hi, m[k])
		}
		return int(f), nil
	}
	for k, v := range m {
		var err error
		switch k {
		case "sampler", "metric", "direction", "task":
			str, ok := v.(string)
			if !ok {
				return nil, mlArgError("option %s must be a string, got %v", k, v)
			}
			switch k {
			case "sampler":
				o.Sampler = strings.ToLower(str)
			case "metric":
				o.Metric = strings.ToLower(str)
			case "direction":
				o.Direction = search.Direction(strings.ToLower(str))
				if o.Direction != search.Minimize && o.Direction != search.Maximize {
					err = mlArgError("direction %q; use minimize or maximize", str)
				}
			case "task":
				o.Task = ml.Task(strings.ToLower(str))
			}
		case "max_trials":
			o.MaxTrials, err = intOpt(k, 1, 100000)
		case "parallelism":
			o.Parallelism, err = intOpt(k, 1, 1024)
		case "cv":
			o.Folds, err = intOpt(k, 2, 100)
		case "seed":
			var seed int
			seed, err = intOpt(k, 0, math.MaxUint32)
			o.Seed = uint64(seed)
		case "timeout_s":
			f, ok := v.(float64)
			if !ok || f <= 0 {
				err = mlArgError("option timeout_s must be a positive number of seconds, got %v", v)
			}
			o.Timeout = time.Duration(f * float64(time.Second))
		case "prune":
			b, ok := v.(bool)
			if !ok {
				err = mlArgError("option prune must be true or false, got %v", v)
			}
			o.Prune = b
		case "holdout":
			f, ok := v.(float64)
			if !ok || f <= 0 || f >= 1 {
				err = mlArgError("option holdout is the fraction of rows held out, between 0 and 1 exclusive; got %v", v)
			}
			o.holdout = f
		default:
			err = mlArgError("ml_search has no option %q; options are: %s", k, strings.Join(searchOptionKeys, ", "))
		}
		if err != nil {
			return nil, err
		}
	}
	return o, nil
}

// searchTask is the task of a search: given, or inferred from the label as ml.Search does.
func searchTask(f *ml.Frame, given ml.Task) ml.Task {
	switch {
	case given != "":
		return given
	case f.Label == nil:
		return ml.Clustering
	case f.Label.Kind == ml.String:
		return ml.Classification
	}
	return ml.Regression
}

// mlSearch is CALL ml_search('model', 'SELECT …', 'label', '{space}' | 'auto', '{options}').
func (e *Engine) mlSearch(ctx *gms.Context, name, query, label, spaceJSON string, options ...string) (gms.RowIter, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 256 {
		return nil, mlArgError("a model name must have 1 to 256 characters")
	}
	if len(options) > 1 {
		return nil, mlArgError("ml_search takes a model name, a query, a label column, a search space and optional JSON options")
	}
	opt, err := parseSearchOptions(strings.Join(options, ""))
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
	task := searchTask(f, opt.Task)
	opt.Task = task
	space := []byte(spaceJSON)
	if s := strings.TrimSpace(spaceJSON); s == "" || strings.EqualFold(s, "auto") {
		if space, err = ml.AutoSpace(task); err != nil {
			return nil, mlArgError("%v", err)
		}
	}
	// A wrong space, metric or sampler is refused before any run or trial is written.
	parsed, err := search.ParseSpace(space)
	if err != nil {
		return nil, mlArgError("ml_search: %v", err)
	}
	if err := ml.CheckSpace(parsed, task); err != nil {
		return nil, mlArgError("ml_search: %v", err)
	}
	if opt.Metric == "" {
		opt.Metric = ml.PrimaryMetric(task)
	}
	valid := map[ml.Task][]string{ml.Classification: {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"},
		ml.Regression: {"r2", "mse", "rmse", "mae"}, ml.Clustering: {"silhouette"}}[task]
	if !slices.Contains(valid, opt.Metric) {
		return nil, mlArgError("ml_search: metric %q is not computed for %s; metrics are: %s", opt.Metric, task, strings.Join(valid, ", "))
	}
	if _, err := search.NewSampler(opt.Sampler, opt.Seed); err != nil {
		return nil, mlArgError("ml_search: %v", err)
	}

	// The study's run and its trials are committed as they happen (each in its own
	// transaction), so the study can be watched and taken over; the best model's version is
	// registered at the end in the caller's transaction, like ml_train's.
	bg := context.WithoutCancel(ctx)
	store := &tableStore{e: e, study: name, worker: workerName()}
	err = e.mlAutocommit(bg, func(ictx *gms.Context) error {
		exp, err := e.mlModelExperiment(ictx, name)
		if err != nil {
			return err
		}
		store.exp = exp
		store.parent, _, err = e.mlStartChildRun(ictx, exp, "ml_search "+name, "")
		if err != nil {
			return err
		}
		params := map[string]string{"space": string(space), "sampler": opt.Sampler, "metric": opt.Metric,
			"max_trials": fmt.Sprint(opt.MaxTrials), "parallelism": fmt.Sprint(opt.Parallelism), "task": string(task)}
		return e.mlLogRun(ictx, store.parent, params, nil, nil)
	})
	if err != nil {
		return nil, err
	}
	if err := store.open(bg); err != nil {
		_ = e.mlAutocommit(bg, func(ictx *gms.Context) error {
			_, err := e.mlEndRun(ictx, store.parent, "FAILED")
			return err
		})
		return nil, err
	}
	store.startWriter()
	store.startHeartbeat()
	opt.Store, opt.Enqueue = store, store.requeued
	res, err := ml.Search(ctx, f, space, opt.SearchOptions)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("the statement was cancelled: %w", ctx.Err()) // KILL QUERY: no best model
	}
	store.stopHeartbeat()
	if werr := store.stopWriter(); werr != nil && err == nil {
		err = werr
	}
	status := "FINISHED"
	if err != nil {
		status = "FAILED"
	}
	if endErr := e.mlAutocommit(bg, func(ictx *gms.Context) error {
		_, err := e.mlEndRun(ictx, store.parent, status)
		return err
	}); endErr != nil && err == nil {
		err = endErr
	}
	if err != nil {
		return nil, mlArgError("ml_search %s: %v", name, err)
	}

	// The best configuration, trained on all rows, scored on a held-out split and recorded
	// as a child run of the study (ml.Search trained it already; training again here is what
	// measures fit_seconds).
	best := res.Study.Best
	o := &trainOptions{cfg: res.Best, folds: max(opt.Folds, 2), holdout: opt.holdout}
	if opt.Folds == 0 {
		o.folds = 5
	}
	tr, err := trainAndScore(f, o)
	if err != nil {
		return nil, err
	}
	tr.extraParams = map[string]string{"search_trial": fmt.Sprint(store.base + best.Number), "search_run_id": store.parent}
	runID, version, err := e.mlRecordModel(ctx, store.exp, name, store.parent, fmt.Sprintf("ml_search %s best trial %d", name, store.base+best.Number), tr)
	if err != nil {
		return nil, err
	}
	row := tr.resultRow(name, version, runID)
	// The search's own score of the best trial is its cross-validated value under the
	// study's metric (the same folds, so the same number when the metric is the primary one).
	row[3], row[4] = opt.Metric, nullIfNaN(res.BestScore)
	if opt.Metric != tr.metric {
		row[5] = nullIfNaN(tr.holdout[opt.Metric])
	}
	return gms.RowsToRowIter(append(row, int64(len(res.Study.Trials)))), nil
}

func workerName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// mlAutocommit runs fn in a transaction of its own, in an internal session, and commits it.
func (e *Engine) mlAutocommit(ctx context.Context, fn func(ictx *gms.Context) error) error {
	ictx := e.internalContext(ctx, "ml")
	s := ictx.Session.(*Session)
	tx, err := s.StartTransaction(ictx, gms.ReadWrite)
	if err != nil {
		return err
	}
	ictx.SetTransaction(tx)
	if err := fn(ictx); err != nil {
		_ = s.Rollback(ictx, tx)
		return err
	}
	return s.CommitTransaction(ictx, tx)
}
