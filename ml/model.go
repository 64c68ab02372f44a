package ml

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
)

// Config says what to train.
type Config struct {
	// Algorithm is the SQL name, e.g. "random_forest"; see Algorithms.
	Algorithm string
	// Task overrides the task inferred from the label: a string label is classification, a
	// numeric one regression (classification if the algorithm only classifies), no label
	// clustering.
	Task Task
	// Params are the hyper-parameters, as decoded from JSON; missing ones take their defaults.
	Params map[string]any
	// Scaler is none (default), standard or minmax; it applies to numeric features.
	Scaler string
	// Imputer fills NULL numeric features: mean (default), median or most_frequent. NULL
	// strings always take the most frequent category.
	Imputer string
	// Seed makes every random choice (bootstrap, feature sampling, k-means++) repeatable.
	Seed uint64
}

// ErrNoRows is returned when there is nothing to train on.
var ErrNoRows = errors.New("ml: training data has zero rows")

// Model is a trained model: preprocessing plus estimator. It is safe for concurrent Predict.
type Model struct {
	Algorithm string
	Task      Task
	Params    map[string]any // resolved hyper-parameters, defaults included
	Scaler    string
	Imputer   string
	Seed      uint64
	Label     string // label column name, "" for clustering
	LabelKind Kind
	Classes   []string // classification: class labels in index order (numbers formatted by strconv 'g')

	prep *preprocessor
	est  estimator
}

// Features lists the feature names and kinds the model takes, in order.
func (m *Model) Features() []Column {
	out := make([]Column, len(m.prep.Columns))
	for i, c := range m.prep.Columns {
		out[i] = Column{Name: c.Name, Kind: c.Kind}
	}
	return out
}

// resolvedConfig is a Config checked against the data.
type resolvedConfig struct {
	alg     *algorithm
	task    Task
	params  hparams
	scaler  string
	imputer string
}

func resolve(f *Frame, cfg Config) (*resolvedConfig, error) {
	alg, err := lookupAlgorithm(cfg.Algorithm)
	if err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	task := cfg.Task
	if task == "" {
		switch {
		case f.Label == nil:
			task = Clustering
		case f.Label.Kind == String:
			task = Classification
		case len(alg.tasks) == 1 && alg.tasks[0] == Classification:
			task = Classification
		default:
			task = Regression
		}
	}
	if !slices.Contains([]Task{Classification, Regression, Clustering}, task) {
		return nil, fmt.Errorf("ml: unknown task %q; tasks are: classification, regression, clustering", task)
	}
	if cfg.Task == "" && task == Classification && f.Label.Kind == String && !slices.Contains(alg.tasks, task) {
		return nil, fmt.Errorf("ml: label %q is a string column; %s is a regression and needs a numeric label (classification algorithms are: %s)",
			f.Label.Name, alg.name, joinNames(AlgorithmsFor(Classification)))
	}
	if !slices.Contains(alg.tasks, task) {
		return nil, fmt.Errorf("ml: %s does not do %s; algorithms for %s are: %s", alg.name, task, task, joinNames(AlgorithmsFor(task)))
	}
	if task != Clustering && f.Label == nil {
		return nil, fmt.Errorf("ml: %s needs a label column", task)
	}
	if task == Regression && f.Label.Kind == String {
		return nil, fmt.Errorf("ml: label %q is a string column; regression needs a numeric label (or use task classification)", f.Label.Name)
	}
	if len(f.Features) == 0 {
		return nil, errors.New("ml: no feature columns; select at least one column besides the label")
	}
	h, err := alg.resolve(cfg.Params, task)
	if err != nil {
		return nil, err
	}
	rc := &resolvedConfig{alg: alg, task: task, params: h, scaler: cfg.Scaler, imputer: cfg.Imputer}
	if rc.scaler == "" {
		rc.scaler = "none"
	}
	if rc.imputer == "" {
		rc.imputer = "mean"
	}
	return rc, nil
}

// labels is a training label encoded for the estimators.
type labels struct {
	y       []float64 // class index or value; nil for clustering
	classes []string
	rows    []int // rows with a non-NULL label
}

func encodeLabels(f *Frame, task Task) (*labels, error) {
	if task == Clustering {
		rows := make([]int, f.Rows())
		for i := range rows {
			rows[i] = i
		}
		return &labels{rows: rows}, nil
	}
	c := f.Label
	l := &labels{}
	for i := 0; i < c.Len(); i++ {
		if !c.IsNull(i) {
			l.rows = append(l.rows, i)
		}
	}
	if len(l.rows) == 0 {
		return nil, fmt.Errorf("ml: label column %q is all NULL; a model needs rows with a label", c.Name)
	}
	if task == Regression {
		for _, r := range l.rows {
			l.y = append(l.y, c.Num[r])
		}
		return l, nil
	}
	keys := classKeys(c, l.rows)
	index := map[string]int{}
	for i, k := range keys {
		index[k] = i
	}
	l.classes = keys
	for _, r := range l.rows {
		l.y = append(l.y, float64(index[classKey(c, r)]))
	}
	return l, nil
}

// classKeys returns the sorted distinct classes of a label: strings in byte order, numbers in
// numeric order (so classes 2 and 10 keep their natural order).
func classKeys(c *Column, rows []int) []string {
	if c.Kind == String {
		set := map[string]bool{}
		for _, r := range rows {
			set[c.Str[r]] = true
		}
		keys := make([]string, 0, len(set))
		for k := range set {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return keys
	}
	set := map[float64]bool{}
	for _, r := range rows {
		set[c.Num[r]] = true
	}
	vals := make([]float64, 0, len(set))
	for v := range set {
		vals = append(vals, v)
	}
	sort.Float64s(vals)
	keys := make([]string, len(vals))
	for i, v := range vals {
		keys[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return keys
}

func classKey(c *Column, r int) string {
	if c.Kind == String {
		return c.Str[r]
	}
	return strconv.FormatFloat(c.Num[r], 'g', -1, 64)
}

// Train fits preprocessing and the estimator on every row of f that has a label.
func Train(f *Frame, cfg Config) (*Model, error) {
	rc, err := resolve(f, cfg)
	if err != nil {
		return nil, err
	}
	if f.Rows() == 0 {
		return nil, ErrNoRows
	}
	l, err := encodeLabels(f, rc.task)
	if err != nil {
		return nil, err
	}
	if len(l.rows) < f.Rows() {
		f = f.take(l.rows)
	}
	return fit(f, l.y, l.classes, rc, cfg.Seed)
}

// fit trains on f whose labels are already encoded as y (in the class order of classes).
func fit(f *Frame, y []float64, classes []string, rc *resolvedConfig, seed uint64) (*Model, error) {
	prep, err := fitPreprocessor(f, rc.scaler, rc.imputer)
	if err != nil {
		return nil, err
	}
	if prep.width == 0 {
		return nil, errors.New("ml: the features have no values (every string column is all NULL)")
	}
	m := &Model{Algorithm: rc.alg.name, Task: rc.task, Params: map[string]any(rc.params), Scaler: rc.scaler,
		Imputer: rc.imputer, Seed: seed, Classes: classes, prep: prep, est: rc.alg.make(rc.params, rc.task)}
	if f.Label != nil && rc.task != Clustering {
		m.Label, m.LabelKind = f.Label.Name, f.Label.Kind
	}
	k := 0
	if rc.task == Classification {
		k = len(classes)
		if k < 2 {
			return nil, fmt.Errorf("ml: label %q has one class (%s); classification needs at least two", f.Label.Name, classes[0])
		}
	}
	if err := m.est.fit(prep.transform(f), y, k, seed); err != nil {
		return nil, fmt.Errorf("ml: %s: %w", rc.alg.name, err)
	}
	return m, nil
}

// Prediction holds a model's output for a batch of rows.
type Prediction struct {
	// Labels are the predicted classes (classification only).
	Labels []string
	// Values are the predicted values (regression), class indexes into Model.Classes
	// (classification) or cluster numbers (clustering).
	Values []float64
	// Proba holds len(Model.Classes) probabilities per row, row-major (classification only).
	Proba []float64
}

// Predict runs the model over the features of f, which must match the training features in
// number and kinds (names are not compared: SQL passes features by position).
func (m *Model) Predict(f *Frame) (*Prediction, error) {
	if err := m.prep.check(f); err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return m.predictDense(m.prep.transform(f)), nil
}

func (m *Model) predictDense(x *dense) *Prediction {
	p := &Prediction{}
	if m.Task != Classification {
		p.Values = make([]float64, x.n)
		m.est.predict(x, p.Values)
		return p
	}
	k := len(m.Classes)
	p.Proba = make([]float64, x.n*k)
	m.est.predict(x, p.Proba)
	p.Values = make([]float64, x.n)
	p.Labels = make([]string, x.n)
	for i := 0; i < x.n; i++ {
		c := argmax(p.Proba[i*k : (i+1)*k])
		p.Values[i] = float64(c)
		p.Labels[i] = m.Classes[c]
	}
	return p
}

// argmax returns the first index of the largest value, so ties go to the lowest class, as in
// scikit-learn.
func argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func joinNames(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	out := s[0]
	for _, x := range s[1:] {
		out += ", " + x
	}
	return out
}

func sq(x float64) float64 { return x * x }
