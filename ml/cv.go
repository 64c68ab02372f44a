package ml

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// CVOptions configures cross-validation.
type CVOptions struct {
	// Folds is k, default 5.
	Folds int
	// Seed shuffles the rows before they are dealt into folds.
	Seed uint64
	// Unshuffled deals rows in their order.
	Unshuffled bool
	// ScikitLearnFolds deals the folds exactly as scikit-learn's StratifiedKFold
	// (classification) or KFold do, with shuffle=!Unshuffled and random_state=Seed (which must
	// fit in 32 bits), numpy's generator included; see sklearn_folds.go. Otherwise the folds
	// come from this package's own generator: stratified round-robin over each class's
	// shuffled rows.
	ScikitLearnFolds bool
	// OnFold, when set, is called after each fold (numbered from 0) with its metrics. A
	// non-nil error stops the cross-validation, which returns it (wrapped): this is where a
	// pruner decides that a trial falling behind on its first folds is not worth finishing.
	OnFold func(fold int, m Metrics) error
}

// CVResult is the outcome of a cross-validation.
type CVResult struct {
	Metric      string    // the primary metric: accuracy, r2 or silhouette
	Scores      []float64 // primary metric per fold
	Score       float64   // mean of Scores
	Metrics     Metrics   // each metric's mean over the folds
	FoldMetrics []Metrics
}

// CrossValidate scores cfg on f by k-fold cross-validation: stratified by class for
// classification, plain k-fold otherwise. Each fold fits preprocessing and the estimator on
// the other folds only. Rows with a NULL label are left out.
func CrossValidate(f *Frame, cfg Config, opt CVOptions) (*CVResult, error) {
	if opt.Folds == 0 {
		opt.Folds = 5
	}
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
	if opt.Folds < 2 || opt.Folds > len(l.rows) {
		return nil, fmt.Errorf("ml: %d folds for %d rows; use between 2 and the number of rows", opt.Folds, len(l.rows))
	}
	if len(l.rows) < f.Rows() {
		f = f.take(l.rows)
	}
	folds := assignFolds(len(l.rows), l.y, rc.task == Classification, opt)
	res := &CVResult{Metric: PrimaryMetric(rc.task), Metrics: Metrics{}}
	for k := range opt.Folds {
		var train, test []int
		for i, fo := range folds {
			if fo == k {
				test = append(test, i)
			} else {
				train = append(train, i)
			}
		}
		met, err := trainAndScore(f, l, train, test, rc, cfg.Seed)
		if err != nil {
			return nil, fmt.Errorf("ml: fold %d of %d: %w", k+1, opt.Folds, err)
		}
		score := met[res.Metric]
		res.Scores = append(res.Scores, score)
		res.FoldMetrics = append(res.FoldMetrics, met)
		if opt.OnFold != nil {
			if err := opt.OnFold(k, met); err != nil {
				return nil, fmt.Errorf("ml: after fold %d of %d: %w", k+1, opt.Folds, err)
			}
		}
	}
	for _, fm := range res.FoldMetrics {
		for name, v := range fm {
			res.Metrics[name] += v / float64(opt.Folds)
		}
	}
	res.Score = res.Metrics[res.Metric]
	return res, nil
}

// assignFolds returns the fold of each row. Stratified: each class's rows, shuffled, are dealt
// round-robin, the dealer carrying on from class to class so fold sizes differ by at most one.
func assignFolds(n int, y []float64, stratified bool, opt CVOptions) []int {
	if opt.ScikitLearnFolds || (opt.Unshuffled && stratified) {
		// unshuffled, scikit-learn's stratified split is as good as any and comparable
		return sklearnFolds(n, y, opt.Folds, stratified, !opt.Unshuffled, uint32(opt.Seed))
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if !opt.Unshuffled {
		rng := rand.New(rand.NewPCG(opt.Seed, 0x666f6c6473))
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	folds := make([]int, n)
	if !stratified {
		// contiguous chunks of the (shuffled) order, the first n%k one row longer
		size, extra, pos := n/opt.Folds, n%opt.Folds, 0
		for k := range opt.Folds {
			m := size
			if k < extra {
				m++
			}
			for _, r := range order[pos : pos+m] {
				folds[r] = k
			}
			pos += m
		}
		return folds
	}
	// a stable sort by class keeps the shuffled order within each class
	slices.SortStableFunc(order, func(a, b int) int { return int(y[a]) - int(y[b]) })
	for i, r := range order {
		folds[r] = i % opt.Folds
	}
	return folds
}

// trainAndScore fits on train rows and returns every metric on test rows.
func trainAndScore(f *Frame, l *labels, train, test []int, rc *resolvedConfig, seed uint64) (Metrics, error) {
	var ytr []float64
	if l.y != nil {
		ytr = pick(l.y, train)
	}
	m, err := fit(f.take(train), ytr, l.classes, rc, seed)
	if err != nil {
		return nil, err
	}
	tf := f.take(test)
	var yte []float64
	if l.y != nil {
		yte = pick(l.y, test)
	}
	return m.score(tf, yte)
}

func pick(v []float64, rows []int) []float64 {
	out := make([]float64, len(rows))
	for i, r := range rows {
		out[i] = v[r]
	}
	return out
}

// score computes the task's metrics of m on f, whose encoded labels are y.
func (m *Model) score(f *Frame, y []float64) (Metrics, error) {
	x := m.prep.transform(f)
	p := m.predictDense(x)
	switch m.Task {
	case Classification:
		truth := make([]int, len(y))
		for i, v := range y {
			truth[i] = int(v)
		}
		return scoreClassification(truth, p.Proba, len(m.Classes)), nil
	case Regression:
		return scoreRegression(y, p.Values), nil
	}
	labels := make([]int, len(p.Values))
	for i, v := range p.Values {
		labels[i] = int(v)
	}
	s, err := Silhouette(x.v, x.d, labels)
	if err != nil {
		return nil, err
	}
	return Metrics{"silhouette": s}, nil
}

// Evaluate scores a trained model on labelled rows (for clustering, the silhouette of its
// clusters). Rows whose label is NULL are left out; a class the model never saw is an error.
func Evaluate(m *Model, f *Frame) (Metrics, error) {
	if err := m.prep.check(f); err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	if m.Task == Clustering {
		if f.Rows() == 0 {
			return nil, ErrNoRows
		}
		return m.score(f, nil)
	}
	if f.Label == nil {
		return nil, fmt.Errorf("ml: evaluating needs the label column %q", m.Label)
	}
	if m.Task == Regression && f.Label.Kind != Numeric {
		return nil, fmt.Errorf("ml: label %q is a string column; the model predicts numbers", f.Label.Name)
	}
	var rows []int
	var y []float64
	index := map[string]int{}
	for i, c := range m.Classes {
		index[c] = i
	}
	for i := 0; i < f.Rows(); i++ {
		if f.Label.IsNull(i) {
			continue
		}
		rows = append(rows, i)
		if m.Task == Regression {
			y = append(y, f.Label.Num[i])
			continue
		}
		c, ok := index[classKey(f.Label, i)]
		if !ok {
			return nil, fmt.Errorf("ml: label value %q is not a class of the model; classes are: %s", classKey(f.Label, i), joinNames(m.Classes))
		}
		y = append(y, float64(c))
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("ml: label column %q has no non-NULL rows to evaluate on", f.Label.Name)
	}
	return m.score(f.take(rows), y)
}

// Holdout trains on a stratified (for classification) random split of f and scores on the
// rest: testFraction of the rows (default 0.2) are held out.
func Holdout(f *Frame, cfg Config, testFraction float64, seed uint64) (*Model, Metrics, error) {
	if testFraction == 0 {
		testFraction = 0.2
	}
	if testFraction <= 0 || testFraction >= 1 {
		return nil, nil, fmt.Errorf("ml: holdout fraction %g; use a number between 0 and 1", testFraction)
	}
	rc, err := resolve(f, cfg)
	if err != nil {
		return nil, nil, err
	}
	if f.Rows() == 0 {
		return nil, nil, ErrNoRows
	}
	l, err := encodeLabels(f, rc.task)
	if err != nil {
		return nil, nil, err
	}
	if len(l.rows) < f.Rows() {
		f = f.take(l.rows)
	}
	n := len(l.rows)
	// Rows are dealt into round(1/fraction) stratified folds and the first is held out.
	k := int(1/testFraction + 0.5)
	if k < 2 || k > n {
		return nil, nil, fmt.Errorf("ml: a %g holdout of %d rows leaves no training or no test rows", testFraction, n)
	}
	folds := assignFolds(n, l.y, rc.task == Classification, CVOptions{Folds: k, Seed: seed})
	var train, test []int
	for i, fo := range folds {
		if fo == 0 {
			test = append(test, i)
		} else {
			train = append(train, i)
		}
	}
	var ytr, yte []float64
	if l.y != nil {
		ytr, yte = pick(l.y, train), pick(l.y, test)
	}
	m, err := fit(f.take(train), ytr, l.classes, rc, cfg.Seed)
	if err != nil {
		return nil, nil, err
	}
	met, err := m.score(f.take(test), yte)
	return m, met, err
}
