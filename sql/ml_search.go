package sql

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"

	"github.com/lakehoused/lakehoused/ml"
	"github.com/lakehoused/lakehoused/ml/search"
)

// CALL ml_search: a hyper-parameter search whose trials are rows of ml.trials and child runs
// of the study's run. The runner is ml.Search (ml/search.Study); what this file adds is the
// table-backed search.Store. Trial rows and runs are committed while the study runs (by one
// writer per study that group-commits what is waiting, in internal transactions of their
// own), so other sessions watch a study while it runs, and a worker holds a lease on each
// RUNNING row that it renews by heartbeat. A search that finds RUNNING rows of its study whose lease has
// expired (their worker died) marks them FAILED and runs their parameters again first.
//
// What remains for several nodes: here one process samples and runs every trial of a search
// and keeps the study in memory (the table is its durable, visible record, read back only to
// take over expired trials). Workers on other nodes would need Trials to read the table,
// Create to claim trial numbers with a conditional insert (the key (study, trial) already
// makes a second insert of the same number fail with 1213), and a way to join a study that
// another node started.

const mlTrialsTable = "CREATE TABLE IF NOT EXISTS ml.trials (study VARCHAR(256) NOT NULL, trial INT NOT NULL, " +
	"state VARCHAR(9) NOT NULL, params JSON, value DOUBLE, run_id VARCHAR(32), started DATETIME(6), finished DATETIME(6), " +
	"worker VARCHAR(256), lease_expires DATETIME(6), error TEXT, search_run_id VARCHAR(32), PRIMARY KEY (study, trial))"

// Trial leases: a RUNNING trial's lease is renewed every trialHeartbeat and lasts trialLease,
// so a worker must miss two heartbeats before its trials are taken back.
var (
	trialLease     = 30 * time.Second
	trialHeartbeat = 10 * time.Second
)

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
		return nil, err
	}
	store.startWriter()
	store.startHeartbeat()
	opt.Store, opt.Enqueue = store, store.requeued
	res, err := ml.Search(ctx, f, space, opt.SearchOptions)
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

// tableStore is a search.Store over ml.trials. Trial numbers in the table continue from the
// study's earlier searches (base + the runner's number); the runner's numbers start at 0.
type tableStore struct {
	e      *Engine
	study  string
	worker string
	exp    string
	parent string // the study's run

	base     int
	requeued []map[string]any

	mu     sync.Mutex
	trials []search.Trial
	runIDs []string

	writes     chan trialWrite
	writerDone chan struct{}
	asyncErr   error // the first failed asynchronous write (under mu)

	stop chan struct{}
	done chan struct{}
}

var _ search.Store = (*tableStore)(nil)

// open finds where the study's trial numbers continue and takes back the RUNNING trials
// whose worker stopped renewing their lease: they are marked FAILED and their parameters
// are run first.
func (s *tableStore) open(ctx context.Context) error {
	return s.e.mlAutocommit(ctx, func(ictx *gms.Context) error {
		rows, err := s.e.mlQuery(ictx, "SELECT COALESCE(MAX(trial), -1) + 1 FROM ml.trials WHERE study = "+sqlString(s.study))
		if err != nil {
			return err
		}
		s.base = int(toInt64(plainNumber(rows[0][0])))
		expired, err := s.e.mlQuery(ictx, "SELECT * FROM ml.trials WHERE study = "+sqlString(s.study)+" AND state = 'RUNNING' AND lease_expires < "+
			sqlString(time.Now().UTC().Format("2006-01-02 15:04:05.000000"))+" ORDER BY trial")
		if err != nil || len(expired) == 0 {
			return err
		}
		return s.e.mlEdit(ictx, "trials", func(ed *editor) error {
			for i, r := range expired {
				var params map[string]any
				if doc, err := storedString(nil, r[3]); err == nil {
					_ = json.Unmarshal([]byte(doc), &params)
				}
				upd := r.Copy()
				upd[2], upd[7] = string(search.Failed), time.Now().UTC()
				upd[10] = fmt.Sprintf("lease expired: worker %v stopped renewing it; its parameters run again as trial %d", r[8], s.base+i)
				if err := ed.Update(ictx, r, upd); err != nil {
					return err
				}
				if params != nil {
					s.requeued = append(s.requeued, params)
				}
			}
			return nil
		})
	})
}

// plainNumber reads MAX(…)+1, which the engine types as it likes, as an int64.
func plainNumber(v any) any {
	f, err := mlNumber(v)
	if err != nil || math.IsNaN(f) {
		return int64(0)
	}
	return int64(f)
}

func (s *tableStore) Trials(context.Context) ([]search.Trial, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]search.Trial, len(s.trials))
	for i, t := range s.trials {
		out[i] = t
		out[i].Intermediate = make(map[int]float64, len(t.Intermediate))
		for k, v := range t.Intermediate {
			out[i].Intermediate[k] = v
		}
	}
	return out, nil
}

// Create names the trial's run and hands its writes to the writer without waiting: the
// run (a child of the study's), its parameters and the trial's RUNNING row with a lease are
// committed with whatever else is waiting. A write that failed earlier fails the next
// Create, which stops the study.
func (s *tableStore) Create(ctx context.Context, params map[string]any, worker string) (int, error) {
	if err := s.writeErr(); err != nil {
		return 0, err
	}
	doc, err := json.Marshal(params)
	if err != nil {
		return 0, err
	}
	runID := newRunID()
	s.mu.Lock()
	n := len(s.trials)
	now := time.Now()
	s.trials = append(s.trials, search.Trial{Number: n, State: search.Running, Params: params, Value: math.NaN(),
		Intermediate: map[int]float64{}, Started: now, Worker: s.worker})
	s.runIDs = append(s.runIDs, runID)
	s.mu.Unlock()
	s.writeAsync(func(ictx *gms.Context) error {
		if _, _, err := s.e.mlStartChildRunWithID(ictx, s.exp, fmt.Sprintf("trial %d", s.base+n), s.parent, runID); err != nil {
			return fmt.Errorf("ml.trials: creating trial %d of %s: %w", s.base+n, s.study, err)
		}
		p := map[string]string{"trial": fmt.Sprint(s.base + n)}
		for k, v := range params {
			p[k] = fmt.Sprint(v)
		}
		if err := s.e.mlLogRun(ictx, runID, p, nil, nil); err != nil {
			return fmt.Errorf("ml.trials: creating trial %d of %s: %w", s.base+n, s.study, err)
		}
		return s.e.mlEdit(ictx, "trials", func(ed *editor) error {
			return ed.Insert(ictx, gms.Row{s.study, int32(s.base + n), string(search.Running), string(doc), nil, runID,
				now.UTC(), nil, s.worker, now.Add(trialLease).UTC(), nil, s.parent})
		})
	})
	return n, nil
}

// Report keeps a fold's value in memory (the pruner reads it there); the values are logged
// on the trial's run when it finishes.
func (s *tableStore) Report(_ context.Context, number, step int, value float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if number < 0 || number >= len(s.trials) || s.trials[number].State != search.Running {
		return fmt.Errorf("search: report on trial %d, which is not running", number)
	}
	s.trials[number].Intermediate[step] = value
	return nil
}

// Finish logs the trial's value and fold values on its run, ends the run (FINISHED, KILLED
// when pruned, FAILED) and writes the final state to its row.
func (s *tableStore) Finish(ctx context.Context, number int, state search.State, value float64, msg string) error {
	s.mu.Lock()
	if number < 0 || number >= len(s.trials) || s.trials[number].State != search.Running {
		s.mu.Unlock()
		return fmt.Errorf("search: finish trial %d, which is not running", number)
	}
	t := &s.trials[number]
	t.State, t.Value, t.Err, t.Finished = state, value, msg, time.Now()
	runID := s.runIDs[number]
	var steps []mlStep
	for step, v := range t.Intermediate {
		steps = append(steps, mlStep{"trial_fold_value", int64(step), v})
	}
	finished := t.Finished
	s.mu.Unlock()
	metrics := map[string]float64{}
	if !math.IsNaN(value) {
		metrics["trial_value"] = value
	}
	status := map[search.State]string{search.Complete: "FINISHED", search.Pruned: "KILLED", search.Failed: "FAILED"}[state]
	// The runner does not wait for this write: the next trial starts while it commits, and
	// the writer commits the ends of trials that finish meanwhile together. The search
	// waits for every write before it returns (stopWriter), and fails if one failed.
	s.writeAsync(func(ictx *gms.Context) error {
		old, ok, err := s.e.mlGet(ictx, "trials", s.study, int32(s.base+number))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("trial %d of %s is gone from ml.trials", s.base+number, s.study)
		}
		upd := old.Copy()
		upd[2], upd[4], upd[7], upd[9] = string(state), nullIfNaN(value), finished.UTC(), nil
		if msg != "" {
			upd[10] = msg
		}
		if err := s.e.mlEdit(ictx, "trials", func(ed *editor) error { return ed.Update(ictx, old, upd) }); err != nil {
			return err
		}
		if err := s.e.mlLogRun(ictx, runID, nil, metrics, steps); err != nil {
			return err
		}
		if msg != "" {
			if _, err := s.e.mlSetTag(ictx, runID, "error", firstRunes(msg, mlMaxTagValue)); err != nil {
				return err
			}
		}
		_, err = s.e.mlEndRun(ictx, runID, status)
		if err != nil {
			return fmt.Errorf("ml.trials: finishing trial %d of %s: %w", s.base+number, s.study, err)
		}
		return nil
	})
	return s.writeErr()
}

// trialWrite is one change to the study's rows, made in a transaction the writer shares
// among the changes that are waiting.
type trialWrite struct {
	fn    func(ictx *gms.Context) error
	done  chan error
	async bool
}

// write hands fn to the study's writer and waits until its transaction has committed.
func (s *tableStore) write(fn func(ictx *gms.Context) error) error {
	if err := s.writeErr(); err != nil {
		return err
	}
	w := trialWrite{fn: fn, done: make(chan error, 1)}
	s.writes <- w
	return <-w.done
}

// writeAsync hands fn to the writer without waiting; its error, if any, is kept for
// writeErr and stopWriter.
func (s *tableStore) writeAsync(fn func(ictx *gms.Context) error) {
	s.writes <- trialWrite{fn: fn, async: true}
}

// writeErr is the first error of an asynchronous write.
func (s *tableStore) writeErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asyncErr
}

func (w trialWrite) answer(s *tableStore, err error) {
	if !w.async {
		w.done <- err
		return
	}
	if err != nil {
		s.mu.Lock()
		if s.asyncErr == nil {
			s.asyncErr = err
		}
		s.mu.Unlock()
	}
}

// startWriter starts the goroutine through which every write of the study goes. It commits
// the changes waiting for it together, one transaction and so one Delta commit per table for
// all of them (group commit): a trial's tracking is ~8 table commits, each a few fsyncs, which
// is more than a cheap trial's fitting, and workers that each committed their own paid them
// all. Being the only writer of the study's rows in this process also means the heartbeat
// and the trials' ends never race to rewrite the same ml.trials file.
func (s *tableStore) startWriter() {
	s.writes = make(chan trialWrite, 64)
	s.writerDone = make(chan struct{})
	go func() {
		defer close(s.writerDone)
		for w := range s.writes {
			batch := []trialWrite{w}
		drain:
			for {
				select {
				case w2, ok := <-s.writes:
					if !ok {
						break drain
					}
					batch = append(batch, w2)
				default:
					break drain
				}
			}
			s.commitWrites(batch)
		}
	}()
}

// stopWriter waits for the writes queued so far and returns the first asynchronous write's
// error; nothing may write after it.
func (s *tableStore) stopWriter() error {
	close(s.writes)
	<-s.writerDone
	return s.writeErr()
}

// commitWrites runs a batch of writes in one transaction. When one of them fails before the
// commit (nothing is written then), each runs again alone, so its error is its own.
func (s *tableStore) commitWrites(batch []trialWrite) {
	ictx := s.e.internalContext(context.Background(), "ml")
	sess := ictx.Session.(*Session)
	tx, err := sess.StartTransaction(ictx, gms.ReadWrite)
	if err == nil {
		ictx.SetTransaction(tx)
		for _, w := range batch {
			if err = w.fn(ictx); err != nil {
				break
			}
		}
		if err != nil {
			_ = sess.Rollback(ictx, tx)
			if len(batch) > 1 {
				for _, w := range batch {
					w.answer(s, s.e.mlAutocommit(context.Background(), w.fn))
				}
				return
			}
		} else {
			err = sess.CommitTransaction(ictx, tx)
		}
	}
	for _, w := range batch {
		w.answer(s, err)
	}
}

func firstRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// startHeartbeat renews the lease of this worker's RUNNING trials until stopHeartbeat.
func (s *tableStore) startHeartbeat() {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		tick := time.NewTicker(trialHeartbeat)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				if err := s.heartbeat(); err != nil {
					s.e.log.Warn("ml_search: renewing trial leases", "study", s.study, "err", err)
				}
			}
		}
	}()
}

func (s *tableStore) stopHeartbeat() {
	close(s.stop)
	<-s.done
}

func (s *tableStore) heartbeat() error {
	return s.write(func(ictx *gms.Context) error {
		rows, err := s.e.mlQuery(ictx, "SELECT * FROM ml.trials WHERE study = "+sqlString(s.study)+" AND state = 'RUNNING' AND worker = "+sqlString(s.worker))
		if err != nil || len(rows) == 0 {
			return err
		}
		until := time.Now().Add(trialLease).UTC()
		return s.e.mlEdit(ictx, "trials", func(ed *editor) error {
			for _, r := range rows {
				upd := r.Copy()
				upd[9] = until
				if err := ed.Update(ictx, r, upd); err != nil {
					return err
				}
			}
			return nil
		})
	})
}
