package ml

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lakehoused/lakehoused/ml/search"
)

// SearchOptions configures a model search.
type SearchOptions struct {
	// Sampler is grid, random or tpe (default).
	Sampler string
	// Metric is the metric to optimise, default the task's primary metric.
	Metric string
	// Direction defaults to maximize, or minimize for log_loss, mse, rmse and mae.
	Direction search.Direction
	// MaxTrials defaults to 50.
	MaxTrials int
	// Timeout stops starting trials after this long (0: none).
	Timeout time.Duration
	// Parallelism is the number of trials at once, default GOMAXPROCS.
	Parallelism int
	// Folds of the cross-validation that scores a trial, default 5.
	Folds int
	// Prune stops trials whose fold scores fall below the median of completed trials.
	Prune bool
	// Seed seeds the sampler, the folds and the models.
	Seed uint64
	// Task overrides the task inferred from the label.
	Task Task
	// Store keeps the trials, default in memory.
	Store search.Store
	// NoBaselines skips the baseline trials. By default a random or TPE search first tries
	// every algorithm of the space with its default hyper-parameters under each scaler
	// choice, then samples: the defaults are strong (they are what a reference table of
	// models is made of), and TPE's independent sampling can miss an (algorithm, scaler)
	// pair that only works together, such as k-NN on raw digits pixels.
	NoBaselines bool
	// Enqueue are parameters to try before the baselines and the sampler, in order: trials
	// a table-backed store took back from a worker that stopped heartbeating.
	Enqueue []map[string]any
}

// SearchResult is the outcome of a model search.
type SearchResult struct {
	Study     *search.Result
	Best      Config  // the best trial's configuration
	BestScore float64 // its cross-validated metric
	// Model is Best trained on every row.
	Model *Model
}

var lowerIsBetter = []string{"log_loss", "mse", "rmse", "mae"}

// Search runs a hyper-parameter search over a JSON space (see search.ParseSpace) whose
// "algorithm" choices are ml algorithms and whose other keys are "scaler", "imputer",
// hyper-parameters shared by every listed algorithm, and per-algorithm sub-spaces. Each trial
// is a k-fold cross-validation; the best configuration is then trained on all rows.
func Search(ctx context.Context, f *Frame, spaceJSON []byte, opt SearchOptions) (*SearchResult, error) {
	space, err := search.ParseSpace(spaceJSON)
	if err != nil {
		return nil, fmt.Errorf("ml: %w", err)
	}
	task := opt.Task
	if task == "" {
		switch {
		case f.Label == nil:
			task = Clustering
		case f.Label.Kind == String:
			task = Classification
		default:
			task = Regression
		}
	}
	if err := CheckSpace(space, task); err != nil {
		return nil, err
	}
	if opt.Metric == "" {
		opt.Metric = PrimaryMetric(task)
	}
	valid := map[Task][]string{Classification: {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"},
		Regression: {"r2", "mse", "rmse", "mae"}, Clustering: {"silhouette"}}[task]
	if !slices.Contains(valid, opt.Metric) {
		return nil, fmt.Errorf("ml: metric %q is not computed for %s; metrics are: %s", opt.Metric, task, strings.Join(valid, ", "))
	}
	if opt.Direction == "" {
		opt.Direction = search.Maximize
		if slices.Contains(lowerIsBetter, opt.Metric) {
			opt.Direction = search.Minimize
		}
	}
	if opt.MaxTrials == 0 {
		opt.MaxTrials = 50
	}
	sampler, err := search.NewSampler(opt.Sampler, opt.Seed)
	if err != nil {
		return nil, fmt.Errorf("ml: %w", err)
	}
	st := &search.Study{Space: space, Sampler: sampler, Direction: opt.Direction, MaxTrials: opt.MaxTrials,
		Timeout: opt.Timeout, Parallelism: opt.Parallelism, Store: opt.Store}
	if opt.Prune {
		st.Pruner = search.NewMedianPruner()
	}
	st.Enqueued = opt.Enqueue
	if !opt.NoBaselines && opt.Sampler != "grid" {
		st.Enqueued = append(slices.Clone(opt.Enqueue), baselines(space)...)
	}
	res, err := st.Run(ctx, func(ctx context.Context, tc *search.TrialContext) (float64, error) {
		cfg, err := ConfigFromParams(tc.Params)
		if err != nil {
			return 0, err
		}
		cfg.Task, cfg.Seed = task, opt.Seed
		cv, err := CrossValidate(f, cfg, CVOptions{Folds: opt.Folds, Seed: opt.Seed, OnFold: func(fold int, m Metrics) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return tc.Report(ctx, fold, m[opt.Metric])
		}})
		if err != nil {
			return 0, err
		}
		return cv.Metrics[opt.Metric], nil
	})
	if err != nil {
		return nil, fmt.Errorf("ml: search: %w", err)
	}
	out := &SearchResult{Study: res}
	if res.Best == nil {
		msg := "no trial completed"
		for _, t := range res.Trials {
			if t.State == search.Failed {
				msg += fmt.Sprintf("; trial %d failed: %s", t.Number, firstLine(t.Err))
				break
			}
		}
		return out, errors.New("ml: search: " + msg)
	}
	out.Best, _ = ConfigFromParams(res.Best.Params)
	out.Best.Task, out.Best.Seed = task, opt.Seed
	out.BestScore = res.Best.Value
	if out.Model, err = Train(f, out.Best); err != nil {
		return out, err
	}
	return out, nil
}

// baselines lists, for every algorithm choice and every scaler choice, a trial with the
// space's fixed values (single-choice unconditional parameters) and nothing else, so every
// hyper-parameter takes its default.
func baselines(space *search.Space) []map[string]any {
	var algs, scalers []any
	fixed := map[string]any{}
	for _, p := range space.Params {
		switch {
		case p.Name == search.AlgorithmKey:
			algs = p.Choices
		case p.Name == "scaler" && p.Kind == search.Categorical:
			scalers = p.Choices
		case p.Cond == "" && p.Kind == search.Categorical && len(p.Choices) == 1:
			fixed[p.Name] = p.Choices[0]
		}
	}
	var out []map[string]any
	for _, a := range algs {
		for i := 0; i < max(len(scalers), 1); i++ {
			t := map[string]any{search.AlgorithmKey: a}
			if len(scalers) > 0 {
				t["scaler"] = scalers[i]
			}
			for k, v := range fixed {
				t[k] = v
			}
			out = append(out, t)
		}
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ConfigFromParams turns a trial's parameters into a Config: "algorithm", "scaler" and
// "imputer" go to their fields, "<algorithm>.<name>" and unprefixed names to hyper-parameters.
func ConfigFromParams(params map[string]any) (Config, error) {
	alg, ok := params[search.AlgorithmKey].(string)
	if !ok {
		return Config{}, fmt.Errorf("ml: trial parameters have no algorithm: %v", params)
	}
	cfg := Config{Algorithm: alg, Params: map[string]any{}}
	for k, v := range params {
		switch {
		case k == search.AlgorithmKey:
		case k == "scaler" || k == "imputer":
			s, ok := v.(string)
			if !ok {
				return Config{}, fmt.Errorf("ml: %s %v is not a name", k, v)
			}
			if k == "scaler" {
				cfg.Scaler = s
			} else {
				cfg.Imputer = s
			}
		case strings.Contains(k, "."):
			a, name, _ := strings.Cut(k, ".")
			if a == alg {
				cfg.Params[name] = v
			}
		default:
			cfg.Params[k] = v
		}
	}
	return cfg, nil
}

// CheckSpace verifies a parsed space against the algorithms before any trial runs: it must
// choose an algorithm, every algorithm must serve task, every parameter must be one of its
// algorithm's hyper-parameters (or scaler, imputer) with values of the right type and range.
func CheckSpace(space *search.Space, task Task) error {
	var algs []string
	for _, p := range space.Params {
		if p.Name == search.AlgorithmKey {
			for _, c := range p.Choices {
				algs = append(algs, c.(string))
			}
		}
	}
	if len(algs) == 0 {
		return fmt.Errorf("ml: search space has no \"algorithm\"; list one or more of: %s", joinNames(AlgorithmsFor(task)))
	}
	for _, a := range algs {
		alg, err := lookupAlgorithm(a)
		if err != nil {
			return err
		}
		if !slices.Contains(alg.tasks, task) {
			return fmt.Errorf("ml: search space: %s does not do %s; algorithms for %s are: %s", a, task, task, joinNames(AlgorithmsFor(task)))
		}
	}
	for _, p := range space.Params {
		switch {
		case p.Name == search.AlgorithmKey:
		case p.Cond == "" && (p.Name == "scaler" || p.Name == "imputer"):
			valid := scalers
			if p.Name == "imputer" {
				valid = imputers
			}
			for _, c := range p.Choices {
				if s, ok := c.(string); !ok || !slices.Contains(valid, s) {
					return fmt.Errorf("ml: search space: %s %v; choose from: %s", p.Name, c, strings.Join(valid, ", "))
				}
			}
			if p.Kind != search.Categorical {
				return fmt.Errorf("ml: search space: %s is a list of names", p.Name)
			}
		default:
			targets := algs
			if p.Cond != "" {
				targets = []string{p.Cond}
			}
			for _, a := range targets {
				if err := checkSpaceParam(algorithms[a], &p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func checkSpaceParam(alg *algorithm, p *search.Param) error {
	name := p.Short()
	hp := alg.param(name)
	if hp == nil {
		extra := ""
		if p.Cond == "" {
			extra = " (a key that is not algorithm, scaler or imputer applies to every algorithm listed; put it in a sub-space to give it to one)"
		}
		return fmt.Errorf("ml: search space: %s has no hyper-parameter %q; its hyper-parameters are: %s%s", alg.name, name, strings.Join(alg.paramNames(), ", "), extra)
	}
	var values []any
	switch p.Kind {
	case search.Categorical:
		values = p.Choices
	case search.Int:
		values = []any{p.Lo, p.Hi}
	default:
		if hp.kind == pInt {
			return fmt.Errorf("ml: search space: %s.%s is an integer; use {\"int\": [lo, hi]}", alg.name, name)
		}
		values = []any{p.Lo, p.Hi}
	}
	if (hp.kind == pString || hp.kind == pBool) && p.Kind != search.Categorical {
		return fmt.Errorf("ml: search space: %s.%s is a %s; give a list of choices", alg.name, name, hp.kind)
	}
	for _, v := range values {
		if _, err := hp.convert(v); err != nil {
			return fmt.Errorf("ml: search space: %s.%s: %w", alg.name, name, err)
		}
	}
	return nil
}
