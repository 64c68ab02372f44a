package ml

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Task is what a model predicts.
type Task string

const (
	Classification Task = "classification"
	Regression     Task = "regression"
	Clustering     Task = "clustering"
)

// estimator is one fitted algorithm over dense, preprocessed features. fit gets y as class
// indexes 0..k-1 for classification (k ≥ 2), values for regression (k = 0) and nil for
// clustering. predict fills out with k probabilities per row for classification, or one value
// per row (the prediction, or the cluster index). Estimators are JSON-marshalable: their
// exported fields are the fitted parameters written in the model format.
type estimator interface {
	fit(x *dense, y []float64, k int, seed uint64) error
	predict(x *dense, out []float64)
}

// dense is a row-major n×d matrix of preprocessed features.
type dense struct {
	n, d int
	v    []float64
}

func (x *dense) row(i int) []float64 { return x.v[i*x.d : (i+1)*x.d] }

type paramKind int

const (
	pInt paramKind = iota
	pFloat
	pString
	pBool
)

func (k paramKind) String() string {
	return [...]string{"integer", "number", "string", "boolean"}[k]
}

// param describes one hyper-parameter: its type, default (regDef, when set, is the default for
// regression) and valid range [lo, hi] (lo excluded when loOpen) or choices.
type param struct {
	name    string
	kind    paramKind
	def     any
	regDef  any
	lo, hi  float64
	loOpen  bool
	choices []string
}

func intParam(name string, def int, lo, hi float64) param {
	return param{name: name, kind: pInt, def: def, lo: lo, hi: hi}
}

func floatParam(name string, def float64, lo, hi float64, loOpen bool) param {
	return param{name: name, kind: pFloat, def: def, lo: lo, hi: hi, loOpen: loOpen}
}

func choiceParam(name string, def string, choices ...string) param {
	return param{name: name, kind: pString, def: def, choices: choices}
}

func boolParam(name string, def bool) param { return param{name: name, kind: pBool, def: def} }

// algorithm is one SQL-named algorithm: the tasks it serves, its hyper-parameters, and a
// constructor from resolved hyper-parameters.
type algorithm struct {
	name   string
	tasks  []Task
	params []param
	make   func(h hparams, task Task) estimator
}

var inf = math.Inf(1)

// Shared hyper-parameters of the tree learners; names and defaults follow scikit-learn, with
// max_depth 0 standing for scikit-learn's None (unlimited).
var treeParams = []param{
	intParam("max_depth", 0, 0, inf),
	intParam("min_samples_split", 2, 2, inf),
	intParam("min_samples_leaf", 1, 1, inf),
}

// algorithms is the registry of SQL algorithm names, set up once at start and never changed.
var algorithms = map[string]*algorithm{}

func register(a *algorithm) { algorithms[a.name] = a }

func init() {
	register(&algorithm{name: "logistic_regression", tasks: []Task{Classification},
		params: []param{floatParam("C", 1, 0, inf, true), intParam("max_iter", 100, 1, inf),
			floatParam("tol", 1e-4, 0, inf, true), boolParam("fit_intercept", true)},
		make: func(h hparams, _ Task) estimator {
			return &logisticRegression{C: h.float("C"), MaxIter: h.int("max_iter"), Tol: h.float("tol"), Intercept: h.bool("fit_intercept")}
		}})
	register(&algorithm{name: "linear_svm", tasks: []Task{Classification},
		params: []param{floatParam("C", 1, 0, inf, true), intParam("max_iter", 1000, 1, inf),
			floatParam("tol", 1e-4, 0, inf, true)},
		make: func(h hparams, _ Task) estimator {
			return &linearSVM{C: h.float("C"), MaxIter: h.int("max_iter"), Tol: h.float("tol")}
		}})
	register(&algorithm{name: "naive_bayes", tasks: []Task{Classification},
		params: []param{floatParam("var_smoothing", 1e-9, 0, inf, false)},
		make: func(h hparams, _ Task) estimator {
			return &gaussianNB{VarSmoothing: h.float("var_smoothing")}
		}})
	register(&algorithm{name: "knn", tasks: []Task{Classification, Regression},
		params: []param{intParam("n_neighbors", 5, 1, inf), choiceParam("weights", "uniform", "uniform", "distance")},
		make: func(h hparams, task Task) estimator {
			return &knn{K: h.int("n_neighbors"), Distance: h.str("weights") == "distance", Regression: task == Regression}
		}})
	register(&algorithm{name: "decision_tree", tasks: []Task{Classification, Regression},
		params: append(slices.Clone(treeParams), choiceParam("max_features", "all", "all", "sqrt", "log2")),
		make: func(h hparams, task Task) estimator {
			return &decisionTree{cfg: treeConfigFrom(h, task)}
		}})
	rfFeatures := choiceParam("max_features", "sqrt", "all", "sqrt", "log2")
	rfFeatures.regDef = "all"
	register(&algorithm{name: "random_forest", tasks: []Task{Classification, Regression},
		params: append(slices.Clone(treeParams), rfFeatures, intParam("n_estimators", 100, 1, 10000), boolParam("bootstrap", true)),
		make: func(h hparams, task Task) estimator {
			return &randomForest{NTrees: h.int("n_estimators"), Bootstrap: h.bool("bootstrap"), cfg: treeConfigFrom(h, task)}
		}})
	register(&algorithm{name: "gbdt", tasks: []Task{Classification, Regression},
		params: []param{intParam("max_iter", 100, 1, 100000), floatParam("learning_rate", 0.1, 0, inf, true),
			intParam("max_leaf_nodes", 31, 2, inf), intParam("max_depth", 0, 0, inf), intParam("min_samples_leaf", 20, 1, inf),
			floatParam("l2_regularization", 0, 0, inf, false), intParam("max_bins", 255, 2, 255)},
		make: func(h hparams, task Task) estimator {
			return &gbdt{cfg: gbdtConfig{Iter: h.int("max_iter"), Rate: h.float("learning_rate"), MaxLeaves: h.int("max_leaf_nodes"),
				MaxDepth: h.int("max_depth"), MinLeaf: h.int("min_samples_leaf"), L2: h.float("l2_regularization"), MaxBins: h.int("max_bins")}}
		}})
	register(&algorithm{name: "linear_regression", tasks: []Task{Regression},
		params: []param{boolParam("fit_intercept", true)},
		make: func(h hparams, _ Task) estimator {
			return &linearModel{Penalty: "none", Intercept: h.bool("fit_intercept")}
		}})
	register(&algorithm{name: "ridge", tasks: []Task{Regression},
		params: []param{floatParam("alpha", 1, 0, inf, false), boolParam("fit_intercept", true)},
		make: func(h hparams, _ Task) estimator {
			return &linearModel{Penalty: "l2", Alpha: h.float("alpha"), Intercept: h.bool("fit_intercept")}
		}})
	cd := []param{intParam("max_iter", 1000, 1, inf), floatParam("tol", 1e-4, 0, inf, true), boolParam("fit_intercept", true)}
	register(&algorithm{name: "lasso", tasks: []Task{Regression},
		params: append([]param{floatParam("alpha", 1, 0, inf, false)}, cd...),
		make: func(h hparams, _ Task) estimator {
			return &linearModel{Penalty: "elastic_net", Alpha: h.float("alpha"), L1Ratio: 1, MaxIter: h.int("max_iter"), Tol: h.float("tol"), Intercept: h.bool("fit_intercept")}
		}})
	register(&algorithm{name: "elastic_net", tasks: []Task{Regression},
		params: append([]param{floatParam("alpha", 1, 0, inf, false), floatParam("l1_ratio", 0.5, 0, 1, false)}, cd...),
		make: func(h hparams, _ Task) estimator {
			return &linearModel{Penalty: "elastic_net", Alpha: h.float("alpha"), L1Ratio: h.float("l1_ratio"), MaxIter: h.int("max_iter"), Tol: h.float("tol"), Intercept: h.bool("fit_intercept")}
		}})
	register(&algorithm{name: "kmeans", tasks: []Task{Clustering},
		params: []param{intParam("n_clusters", 8, 1, inf), intParam("n_init", 10, 1, inf), intParam("max_iter", 300, 1, inf),
			floatParam("tol", 1e-4, 0, inf, false)},
		make: func(h hparams, _ Task) estimator {
			return &kmeans{K: h.int("n_clusters"), NInit: h.int("n_init"), MaxIter: h.int("max_iter"), Tol: h.float("tol")}
		}})
}

// Algorithms lists the SQL algorithm names, sorted.
func Algorithms() []string {
	names := make([]string, 0, len(algorithms))
	for n := range algorithms {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// AlgorithmsFor lists the algorithm names that serve task, sorted.
func AlgorithmsFor(task Task) []string {
	var names []string
	for _, n := range Algorithms() {
		if slices.Contains(algorithms[n].tasks, task) {
			names = append(names, n)
		}
	}
	return names
}

func lookupAlgorithm(name string) (*algorithm, error) {
	a := algorithms[name]
	if a == nil {
		return nil, fmt.Errorf("ml: unknown algorithm %q; algorithms are: %s", name, strings.Join(Algorithms(), ", "))
	}
	return a, nil
}

// ParamNames lists the hyper-parameters of an algorithm.
func ParamNames(algorithm string) ([]string, error) {
	a, err := lookupAlgorithm(algorithm)
	if err != nil {
		return nil, err
	}
	return a.paramNames(), nil
}

func (a *algorithm) paramNames() []string {
	names := make([]string, len(a.params))
	for i, p := range a.params {
		names[i] = p.name
	}
	sort.Strings(names)
	return names
}

func (a *algorithm) param(name string) *param {
	for i := range a.params {
		if a.params[i].name == name {
			return &a.params[i]
		}
	}
	return nil
}

// hparams are resolved hyper-parameters: every parameter of the algorithm present, with its
// Go type fixed (int, float64, string, bool).
type hparams map[string]any

func (h hparams) int(n string) int       { return h[n].(int) }
func (h hparams) float(n string) float64 { return h[n].(float64) }
func (h hparams) str(n string) string    { return h[n].(string) }
func (h hparams) bool(n string) bool     { return h[n].(bool) }

// resolve checks user hyper-parameters (as decoded from JSON: numbers are float64, or int from
// Go callers) against the algorithm and fills in the defaults.
func (a *algorithm) resolve(user map[string]any, task Task) (hparams, error) {
	h := hparams{}
	for _, p := range a.params {
		def := p.def
		if task == Regression && p.regDef != nil {
			def = p.regDef
		}
		h[p.name] = def
	}
	for name, v := range user {
		p := a.param(name)
		if p == nil {
			return nil, fmt.Errorf("ml: %s has no hyper-parameter %q; its hyper-parameters are: %s",
				a.name, name, strings.Join(a.paramNames(), ", "))
		}
		cv, err := p.convert(v)
		if err != nil {
			return nil, fmt.Errorf("ml: %s hyper-parameter %s: %w", a.name, name, err)
		}
		h[name] = cv
	}
	return h, nil
}

func (p *param) convert(v any) (any, error) {
	switch p.kind {
	case pBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("got %v (%T); want true or false", v, v)
	case pString:
		s, ok := v.(string)
		if !ok || !slices.Contains(p.choices, s) {
			return nil, fmt.Errorf("got %v; want one of: %s", v, strings.Join(p.choices, ", "))
		}
		return s, nil
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	default:
		return nil, fmt.Errorf("got %v (%T); want a %s", v, v, p.kind)
	}
	if p.kind == pInt && f != math.Trunc(f) {
		return nil, fmt.Errorf("got %v; want an integer", v)
	}
	if math.IsNaN(f) || f < p.lo || (p.loOpen && f == p.lo) || f > p.hi {
		lo := "≥"
		if p.loOpen {
			lo = ">"
		}
		rng := fmt.Sprintf("%s %g", lo, p.lo)
		if !math.IsInf(p.hi, 1) {
			rng += fmt.Sprintf(" and ≤ %g", p.hi)
		}
		return nil, fmt.Errorf("got %v; want a %s %s", v, p.kind, rng)
	}
	if p.kind == pInt {
		return int(f), nil
	}
	return f, nil
}
