package search

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const automlSpace = `{"algorithm": ["logistic_regression", "random_forest", "gbdt"],
	"random_forest": {"n_estimators": {"int": [50, 500]}, "max_features": ["sqrt", "log2"]},
	"logistic_regression": {"C": {"log_float": [0.01, 100]}},
	"scaler": ["none", "standard"]}`

func TestParseSpace(t *testing.T) {
	t.Parallel()
	s, err := ParseSpace([]byte(automlSpace))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range s.Params {
		names = append(names, p.Name+":"+string(p.Kind)+":"+p.Cond)
	}
	want := "algorithm:choice: scaler:choice: logistic_regression.C:log_float:logistic_regression random_forest.max_features:choice:random_forest random_forest.n_estimators:int:random_forest"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("params\n got %s\nwant %s", got, want)
	}
	// every sampler respects conditions and ranges
	for _, name := range []string{"grid", "random", "tpe"} {
		sm, _ := NewSampler(name, 1)
		st := &Study{Space: s, Sampler: sm, MaxTrials: 40, Parallelism: 2}
		res, err := st.Run(context.Background(), func(_ context.Context, tc *TrialContext) (float64, error) {
			p := tc.Params
			alg := p["algorithm"].(string)
			for k := range p {
				if strings.Contains(k, ".") && !strings.HasPrefix(k, alg+".") {
					return 0, fmt.Errorf("%s has parameter %s", alg, k)
				}
			}
			if alg == "random_forest" {
				n := p["random_forest.n_estimators"].(int)
				if n < 50 || n > 500 {
					return 0, fmt.Errorf("n_estimators %d", n)
				}
				return float64(n), nil
			}
			if alg == "logistic_regression" {
				c := p["logistic_regression.C"].(float64)
				if c < 0.01 || c > 100 {
					return 0, fmt.Errorf("C %v", c)
				}
				return c, nil
			}
			return 1, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range res.Trials {
			if tr.State != Complete {
				t.Errorf("%s: trial %d %s: %s", name, tr.Number, tr.State, tr.Err)
			}
		}
		if name == "grid" {
			// 1 (gbdt) ×2 scalers + 5 C ×2 + 5 n × 2 max_features × 2 = 2 + 10 + 20 = 32 points
			if len(res.Trials) != 32 {
				t.Errorf("grid ran %d trials, want 32 (then exhausted)", len(res.Trials))
			}
			seen := map[string]bool{}
			for _, tr := range res.Trials {
				k := fmt.Sprint(tr.Params)
				if seen[k] {
					t.Errorf("grid repeated %s", k)
				}
				seen[k] = true
			}
		}
	}
}

func TestParseSpaceErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ space, want string }{
		{`{}`, "empty"},
		{`[1]`, "not a JSON object"},
		{`{"algorithm": []}`, "empty list"},
		{`{"algorithm": ["gbdt"], "random_forest": {"n_estimators": {"int": [1, 2]}}}`, `sub-space "random_forest" is for an algorithm not in the algorithm list (gbdt)`},
		{`{"x": {"int": [5, 1]}}`, "lo > hi"},
		{`{"x": {"int": [1.5, 3]}}`, "integer bounds"},
		{`{"x": {"log_float": [0, 1]}}`, "lo > 0"},
		{`{"x": {"normal": [0, 1]}}`, "a sub-space needs an \"algorithm\" list"},
		{`{"algorithm": ["a"], "x": {"uniform": [0, 1]}}`, "not in the algorithm list"},
		{`{"x": {"float": ["a", 1]}}`, "bounds must be numbers"},
		{`{"x": [1, 1]}`, "listed twice"},
		{`{"x": [null]}`, "not a string, number or boolean"},
		{`{"algorithm": ["a"], "a": {"b": {"c": [1]}}}`, "do not nest"},
		{`{"algorithm": {"int": [1, 2]}}`, "list of names"},
	} {
		_, err := ParseSpace([]byte(c.space))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.space, err, c.want)
		}
	}
}

func TestStudyRecordsFailuresAndGoesOn(t *testing.T) {
	t.Parallel()
	space, _ := ParseSpace([]byte(`{"x": {"int": [0, 1000]}}`))
	st := &Study{Space: space, Sampler: NewRandom(3), MaxTrials: 12, Parallelism: 3, Direction: Maximize}
	res, err := st.Run(context.Background(), func(_ context.Context, tc *TrialContext) (float64, error) {
		switch tc.Number % 4 {
		case 1:
			panic("estimator blew up")
		case 2:
			return 0, errors.New("bad hyper-parameter")
		}
		return float64(tc.Params["x"].(int)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Trials) != 12 {
		t.Fatalf("%d trials, want 12", len(res.Trials))
	}
	for _, tr := range res.Trials {
		switch tr.Number % 4 {
		case 1:
			if tr.State != Failed || !strings.Contains(tr.Err, "panic: estimator blew up") {
				t.Errorf("trial %d: %s %q, want FAILED with the panic", tr.Number, tr.State, tr.Err)
			}
		case 2:
			if tr.State != Failed || tr.Err != "bad hyper-parameter" {
				t.Errorf("trial %d: %s %q, want FAILED with the error", tr.Number, tr.State, tr.Err)
			}
		default:
			if tr.State != Complete || tr.Finished.Before(tr.Started) {
				t.Errorf("trial %d: %s", tr.Number, tr.State)
			}
		}
	}
	best := math.Inf(-1)
	for _, tr := range res.Trials {
		if tr.State == Complete {
			best = math.Max(best, tr.Value)
		}
	}
	if res.Best == nil || res.Best.Value != best {
		t.Errorf("best %+v, want value %v (maximising)", res.Best, best)
	}
}

func TestMedianPruner(t *testing.T) {
	t.Parallel()
	p := NewMedianPruner()
	var trials []Trial
	for i := range 5 {
		trials = append(trials, Trial{Number: i, State: Complete, Intermediate: map[int]float64{0: float64(i), 1: float64(i)}})
	}
	// median at step 0 is 2
	if !p.Prune(trials, 9, 0, 2.5, Minimize) || p.Prune(trials, 9, 0, 1.5, Minimize) {
		t.Error("minimising: 2.5 should be pruned, 1.5 kept (median 2)")
	}
	if p.Prune(trials, 9, 0, 2.5, Maximize) || !p.Prune(trials, 9, 0, 1.5, Maximize) {
		t.Error("maximising: 1.5 should be pruned, 2.5 kept")
	}
	if p.Prune(trials[:4], 9, 0, 100, Minimize) {
		t.Error("pruned before 5 trials completed")
	}
	if (&MedianPruner{StartupTrials: 5, WarmupSteps: 2}).Prune(trials, 9, 1, 100, Minimize) {
		t.Error("pruned during warm-up")
	}
}

func TestStudyPrunesAndTimesOut(t *testing.T) {
	t.Parallel()
	space, _ := ParseSpace([]byte(`{"x": {"float": [0, 1]}}`))
	// objective: 5 steps of the same value x; later trials worse than the median stop early
	st := &Study{Space: space, Sampler: NewRandom(5), Pruner: NewMedianPruner(), MaxTrials: 30, Parallelism: 1}
	var steps atomic.Int64
	res, err := st.Run(context.Background(), func(ctx context.Context, tc *TrialContext) (float64, error) {
		x := tc.Params["x"].(float64)
		for step := range 5 {
			steps.Add(1)
			if err := tc.Report(ctx, step, x); err != nil {
				return 0, err
			}
		}
		return x, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pruned := 0
	for _, tr := range res.Trials {
		if tr.State == Pruned {
			pruned++
			if len(tr.Intermediate) != 1 || tr.Value != tr.Params["x"] {
				t.Errorf("pruned trial %d: %d steps, value %v", tr.Number, len(tr.Intermediate), tr.Value)
			}
		}
	}
	t.Logf("pruned %d of 30 trials; %d steps run of 150", pruned, steps.Load())
	if pruned < 5 {
		t.Errorf("only %d trials pruned", pruned)
	}
	// timeout: trials of 20 ms, 100 ms budget, parallelism 2: about 10 trials, not 1000
	st = &Study{Space: space, Sampler: NewTPE(1), MaxTrials: 1000, Parallelism: 2, Timeout: 100 * time.Millisecond}
	start := time.Now()
	res, err = st.Run(context.Background(), func(ctx context.Context, tc *TrialContext) (float64, error) {
		time.Sleep(20 * time.Millisecond)
		return tc.Params["x"].(float64), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// all 1000 trials would take 10 s; the study must stop one trial after the 100 ms budget
	if el := time.Since(start); el > 5*time.Second || len(res.Trials) >= 1000 || len(res.Trials) < 1 {
		t.Errorf("timeout study ran %d trials in %v", len(res.Trials), el)
	}
}

func TestStudyIsReproducibleSequentially(t *testing.T) {
	t.Parallel()
	space, _ := ParseSpace([]byte(automlSpace))
	run := func() []string {
		st := &Study{Space: space, Sampler: NewTPE(42), MaxTrials: 25, Parallelism: 1, Direction: Maximize}
		res, _ := st.Run(context.Background(), func(_ context.Context, tc *TrialContext) (float64, error) {
			if v, ok := tc.Params["logistic_regression.C"].(float64); ok {
				return -math.Abs(math.Log(v) - 1), nil
			}
			return -3, nil
		})
		var out []string
		for _, tr := range res.Trials {
			out = append(out, fmt.Sprint(tr.Params))
		}
		return out
	}
	a, b := run(), run()
	if strings.Join(a, "|") != strings.Join(b, "|") {
		t.Error("two runs with the same seed proposed different trials")
	}
}
