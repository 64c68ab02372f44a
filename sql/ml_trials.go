package sql

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"

	"github.com/lakehoused/lakehoused/ml/search"
)

// ml.trials, the table-backed search.Store of ml_search: each trial is a row (leased while it
// runs) and a child run of the study's run; one writer per study commits their writes.

const mlTrialsTable = "CREATE TABLE IF NOT EXISTS ml.trials (study VARCHAR(256) NOT NULL, trial INT NOT NULL, " +
	"state VARCHAR(9) NOT NULL, params JSON, value DOUBLE, run_id VARCHAR(32), started DATETIME(6), finished DATETIME(6), " +
	"worker VARCHAR(256), lease_expires DATETIME(6), error TEXT, search_run_id VARCHAR(32), PRIMARY KEY (study, trial))"

// Trial leases: a RUNNING trial's lease is renewed every trialHeartbeat and lasts trialLease,
// so a worker must miss two heartbeats before its trials are taken back.
var (
	trialLease     = 30 * time.Second
	trialHeartbeat = 10 * time.Second
)

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
