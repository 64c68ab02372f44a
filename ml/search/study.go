package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// State is where a trial is in its life.
type State string

const (
	Running  State = "RUNNING"
	Complete State = "COMPLETE"
	Pruned   State = "PRUNED"
	Failed   State = "FAILED"
)

// Direction says whether the study looks for the smallest or the largest value.
type Direction string

const (
	Minimize Direction = "minimize"
	Maximize Direction = "maximize"
)

// Trial is the record of one trial.
type Trial struct {
	Number int
	State  State
	Params map[string]any
	// Value is the objective (COMPLETE) or the last intermediate value (PRUNED).
	Value float64
	// Intermediate holds the values reported at each step (cross-validation folds).
	Intermediate map[int]float64
	// Err is why a FAILED trial failed.
	Err               string
	Started, Finished time.Time
	Worker            string
}

// lastStep returns the last reported step and its value (-1 when none).
func (t *Trial) lastStep() (int, float64) {
	step, v := -1, math.NaN()
	for s, x := range t.Intermediate {
		if s > step {
			step, v = s, x
		}
	}
	return step, v
}

// Store keeps a study's trials. It is the seam between the runner and where trials live:
// MemoryStore for one process; a table-backed store can hand trials to workers on several
// nodes by leasing rows, as long as Create gives each trial a distinct number and Trials sees
// every trial created so far (RUNNING ones included, so samplers do not propose the same
// point twice).
type Store interface {
	// Trials returns every trial of the study, ordered by number.
	Trials(ctx context.Context) ([]Trial, error)
	// Create records a new RUNNING trial with params and returns its number.
	Create(ctx context.Context, params map[string]any, worker string) (int, error)
	// Report records an intermediate value of a RUNNING trial.
	Report(ctx context.Context, number, step int, value float64) error
	// Finish records the final state of a trial: COMPLETE, PRUNED or FAILED.
	Finish(ctx context.Context, number int, state State, value float64, msg string) error
}

// MemoryStore is an in-process Store.
type MemoryStore struct {
	mu     sync.Mutex
	trials []Trial
	now    func() time.Time
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{now: time.Now} }

func (m *MemoryStore) Trials(context.Context) ([]Trial, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Trial, len(m.trials))
	for i, t := range m.trials {
		out[i] = t
		out[i].Intermediate = make(map[int]float64, len(t.Intermediate))
		for s, v := range t.Intermediate {
			out[i].Intermediate[s] = v
		}
	}
	return out, nil
}

func (m *MemoryStore) Create(_ context.Context, params map[string]any, worker string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.trials)
	m.trials = append(m.trials, Trial{Number: n, State: Running, Params: params, Value: math.NaN(),
		Intermediate: map[int]float64{}, Started: m.now(), Worker: worker})
	return n, nil
}

func (m *MemoryStore) Report(_ context.Context, number, step int, value float64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if number < 0 || number >= len(m.trials) || m.trials[number].State != Running {
		return fmt.Errorf("search: report on trial %d, which is not running", number)
	}
	m.trials[number].Intermediate[step] = value
	return nil
}

func (m *MemoryStore) Finish(_ context.Context, number int, state State, value float64, msg string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if number < 0 || number >= len(m.trials) || m.trials[number].State != Running {
		return fmt.Errorf("search: finish trial %d, which is not running", number)
	}
	t := &m.trials[number]
	t.State, t.Value, t.Err, t.Finished = state, value, msg, m.now()
	return nil
}

// ErrPruned is returned by TrialContext.Report when the pruner stops the trial; an objective
// returns it (possibly wrapped) to have the trial recorded PRUNED.
var ErrPruned = errors.New("search: trial pruned")

// ErrSpaceExhausted is returned by a sampler that has proposed every point (the grid).
var ErrSpaceExhausted = errors.New("search: every point of the space has been tried")

// TrialContext is what an objective sees of its trial.
type TrialContext struct {
	Number int
	Params map[string]any
	study  *Study
}

// Report records the value at step (e.g. a fold's score) and asks the pruner whether the
// trial should stop; it returns ErrPruned when it should.
func (t *TrialContext) Report(ctx context.Context, step int, value float64) error {
	if err := t.study.Store.Report(ctx, t.Number, step, value); err != nil {
		return err
	}
	if t.study.Pruner == nil {
		return nil
	}
	trials, err := t.study.Store.Trials(ctx)
	if err != nil {
		return err
	}
	if t.study.Pruner.Prune(trials, t.Number, step, value, t.study.Direction) {
		return ErrPruned
	}
	return nil
}

// Objective evaluates one trial; the error decides its state (nil COMPLETE, ErrPruned PRUNED,
// anything else FAILED). A panic is recovered and recorded FAILED.
type Objective func(ctx context.Context, t *TrialContext) (float64, error)

// Study runs trials of an objective over a space.
type Study struct {
	Space   *Space
	Sampler Sampler
	// Pruner may be nil (no pruning).
	Pruner Pruner
	// Direction defaults to Minimize.
	Direction Direction
	// MaxTrials is the number of trials to start, default 100.
	MaxTrials int
	// Timeout stops starting new trials after this long (0: no limit). Running trials get a
	// context that is cancelled then.
	Timeout time.Duration
	// Parallelism is the number of trials run at once, default GOMAXPROCS.
	Parallelism int
	// Store holds the trials, default a new MemoryStore.
	Store Store
	// Enqueued are parameters to try first, in order, before the sampler is asked (Optuna's
	// enqueue_trial): trial k of the study runs Enqueued[k] while k < len(Enqueued). They count
	// towards MaxTrials.
	Enqueued []map[string]any
	// Worker names this process in trial records, default "local".
	Worker string
	// Logger gets one debug line per finished trial; default slog.Default().
	Logger *slog.Logger
}

// Result summarises a finished study.
type Result struct {
	Trials []Trial
	// Best is the best COMPLETE trial, nil when none completed.
	Best *Trial
}

// Run runs the study until MaxTrials trials have started and finished, the timeout passes,
// ctx is cancelled, or the sampler runs out of points. Failed trials do not stop it; only an
// error of the Store or the Sampler does. Run fills the zero fields of s with their defaults.
// A trial still running when the timeout passes sees its context cancelled; if it returns
// that error it is recorded FAILED.
func (s *Study) Run(ctx context.Context, obj Objective) (*Result, error) {
	if s.Space == nil || len(s.Space.Params) == 0 {
		return nil, errors.New("search: study has an empty space")
	}
	if s.Sampler == nil {
		return nil, errors.New("search: study has no sampler; use NewTPE, NewRandom or NewGrid")
	}
	if s.Direction == "" {
		s.Direction = Minimize
	}
	if s.Direction != Minimize && s.Direction != Maximize {
		return nil, fmt.Errorf("search: direction %q; use minimize or maximize", s.Direction)
	}
	if s.MaxTrials == 0 {
		s.MaxTrials = 100
	}
	if s.Parallelism <= 0 {
		s.Parallelism = runtime.GOMAXPROCS(0)
	}
	if s.Store == nil {
		s.Store = NewMemoryStore()
	}
	if s.Worker == "" {
		s.Worker = "local"
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	var (
		mu      sync.Mutex // serialises sampling and creation, so each proposal sees the previous ones
		started int
		runErr  error
		wg      sync.WaitGroup
	)
	next := func() (*TrialContext, bool) {
		mu.Lock()
		defer mu.Unlock()
		if runErr != nil || started >= s.MaxTrials || ctx.Err() != nil {
			return nil, false
		}
		trials, err := s.Store.Trials(ctx)
		if err != nil {
			runErr = err
			return nil, false
		}
		var params map[string]any
		if len(trials) < len(s.Enqueued) {
			params = maps.Clone(s.Enqueued[len(trials)])
		} else {
			params, err = s.Sampler.Sample(s.Space, s.minimising(trials))
			if errors.Is(err, ErrSpaceExhausted) {
				return nil, false
			}
			if err != nil {
				runErr = err
				return nil, false
			}
		}
		n, err := s.Store.Create(ctx, params, s.Worker)
		if err != nil {
			runErr = err
			return nil, false
		}
		started++
		return &TrialContext{Number: n, Params: params, study: s}, true
	}
	for range min(s.Parallelism, s.MaxTrials) {
		wg.Go(func() {
			for {
				t, ok := next()
				if !ok {
					return
				}
				if err := s.runTrial(ctx, t, obj); err != nil {
					mu.Lock()
					runErr = errors.Join(runErr, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	// A study whose own context was cancelled still reports what it ran.
	trials, err := s.Store.Trials(context.WithoutCancel(ctx))
	if err != nil {
		return nil, errors.Join(runErr, err)
	}
	res := &Result{Trials: trials}
	for i := range trials {
		t := &trials[i]
		if t.State == Complete && (res.Best == nil || s.better(t.Value, res.Best.Value)) {
			res.Best = t
		}
	}
	return res, runErr
}

// minimising returns trials as a sampler sees them: values negated when the study maximises,
// because samplers always minimise.
func (s *Study) minimising(trials []Trial) []Trial {
	if s.Direction == Minimize {
		return trials
	}
	for i := range trials {
		trials[i].Value = -trials[i].Value
		for k, v := range trials[i].Intermediate {
			trials[i].Intermediate[k] = -v
		}
	}
	return trials
}

func (s *Study) better(a, b float64) bool {
	if s.Direction == Maximize {
		return a > b
	}
	return a < b
}

// runTrial runs one trial and records its end; only a store error is returned.
func (s *Study) runTrial(ctx context.Context, t *TrialContext, obj Objective) error {
	value, err := func() (v float64, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		return obj(ctx, t)
	}()
	state, msg := Complete, ""
	switch {
	case errors.Is(err, ErrPruned):
		state = Pruned
		trials, terr := s.Store.Trials(context.WithoutCancel(ctx))
		if terr == nil && t.Number < len(trials) {
			_, value = trials[t.Number].lastStep()
		}
	case err != nil:
		state, msg, value = Failed, err.Error(), math.NaN()
	case math.IsNaN(value):
		state, msg = Failed, "objective returned NaN"
	}
	s.Logger.Debug("search trial finished", "trial", t.Number, "state", state, "value", value, "params", t.Params)
	return s.Store.Finish(context.WithoutCancel(ctx), t.Number, state, value, msg)
}

// Pruner decides whether a running trial should stop after reporting value at step.
type Pruner interface {
	Prune(trials []Trial, number, step int, value float64, dir Direction) bool
}

// MedianPruner stops a trial whose value at a step is worse than the median of the values
// COMPLETE trials reported at that step, once StartupTrials trials have completed and from
// step WarmupSteps on (Optuna's defaults: 5 and 0).
type MedianPruner struct {
	StartupTrials int
	WarmupSteps   int
}

// NewMedianPruner returns a median pruner with Optuna's defaults.
func NewMedianPruner() *MedianPruner { return &MedianPruner{StartupTrials: 5} }

func (p *MedianPruner) Prune(trials []Trial, number, step int, value float64, dir Direction) bool {
	if step < p.WarmupSteps {
		return false
	}
	var vals []float64
	for _, t := range trials {
		if t.State != Complete || t.Number == number {
			continue
		}
		if v, ok := t.Intermediate[step]; ok {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 || len(vals) < p.StartupTrials {
		return false
	}
	m := medianOf(vals)
	if dir == Maximize {
		return value < m
	}
	return value > m
}
