package ml

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// withExtras adds a string feature (with NULLs) and NULLs in the first numeric feature, so
// every model also exercises imputation and one-hot encoding.
func withExtras(f *Frame) *Frame {
	n := f.Rows()
	colors := []string{"red", "green", "blue"}
	s, valid := make([]string, n), make([]bool, n)
	num := slices.Clone(f.Features[0].Num)
	for i := range n {
		s[i], valid[i] = colors[i%3], i%7 != 0
		if i%11 == 0 {
			num[i] = math.NaN()
		}
	}
	out := &Frame{Label: f.Label}
	out.Features = append(out.Features, NumericColumn(f.Features[0].Name, num))
	out.Features = append(out.Features, f.Features[1:]...)
	out.Features = append(out.Features, StringColumn("color", s, valid))
	return out
}

func TestSaveLoadPredictsIdentically(t *testing.T) {
	t.Parallel()
	iris := withExtras(dataset(t, "iris"))
	diabetes := withExtras(dataset(t, "diabetes"))
	unlabelled := &Frame{Features: iris.Features}
	cases := []struct {
		f   *Frame
		cfg Config
	}{
		{unlabelled, Config{Algorithm: "kmeans", Params: map[string]any{"n_clusters": 3.0}}},
	}
	for _, alg := range AlgorithmsFor(Classification) {
		cases = append(cases, struct {
			f   *Frame
			cfg Config
		}{iris, Config{Algorithm: alg, Scaler: "standard", Imputer: "median", Seed: 7}})
	}
	for _, alg := range AlgorithmsFor(Regression) {
		cases = append(cases, struct {
			f   *Frame
			cfg Config
		}{diabetes, Config{Algorithm: alg, Scaler: "minmax", Imputer: "most_frequent", Seed: 7}})
	}
	for _, c := range cases {
		m, err := Train(c.f, c.cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.cfg.Algorithm, err)
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", c.cfg.Algorithm, err)
		}
		m2, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: %v", c.cfg.Algorithm, err)
		}
		p1, err := m.Predict(c.f)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := m2.Predict(c.f)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p1.Values, p2.Values) || !slices.Equal(p1.Proba, p2.Proba) || !slices.Equal(p1.Labels, p2.Labels) {
			t.Errorf("%s: predictions differ after save and load", c.cfg.Algorithm)
		}
		b2, _ := m2.Marshal()
		if !bytes.Equal(b, b2) {
			t.Errorf("%s: saving a loaded model gives different bytes", c.cfg.Algorithm)
		}
		t.Logf("%-20s %-14s %7d bytes", m.Algorithm, m.Task, len(b))
	}
}

func TestTrainingIsDeterministic(t *testing.T) {
	t.Parallel()
	f := dataset(t, "wine")
	for _, alg := range []string{"random_forest", "gbdt", "decision_tree"} {
		a, err := Train(f, Config{Algorithm: alg, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Train(f, Config{Algorithm: alg, Seed: 3})
		ba, _ := a.Marshal()
		bb, _ := b.Marshal()
		if !bytes.Equal(ba, bb) {
			t.Errorf("%s: two fits with the same seed differ", alg)
		}
	}
}

func TestPreprocessing(t *testing.T) {
	t.Parallel()
	f := &Frame{Features: []Column{
		NumericColumn("a", []float64{1, math.NaN(), 3, 4}),
		StringColumn("s", []string{"x", "y", "", "x"}, []bool{true, true, false, true}),
	}}
	p, err := fitPreprocessor(f, "standard", "median")
	if err != nil {
		t.Fatal(err)
	}
	// a: median of 1,3,4 is 3 → column 1,3,3,4, mean 2.75, sd sqrt(((1.75)²+.25²·2+1.25²)/4)
	sd := math.Sqrt((1.75*1.75 + 0.0625*2 + 1.5625) / 4)
	x := p.transform(f)
	if x.d != 3 {
		t.Fatalf("width %d, want 3 (a, s=x, s=y)", x.d)
	}
	if !near(x.v[3], (3-2.75)/sd, 1e-12) {
		t.Errorf("imputed+scaled %v, want %v", x.v[3], (3-2.75)/sd)
	}
	// the NULL string takes the most frequent category x
	if x.v[2*3+1] != 1 || x.v[2*3+2] != 0 {
		t.Errorf("NULL string row one-hot %v, want [1 0]", x.v[7:9])
	}
	// an unseen category is all zeros
	g := &Frame{Features: []Column{NumericColumn("a", []float64{2}), StringColumn("s", []string{"zzz"}, nil)}}
	if err := p.check(g); err != nil {
		t.Fatal(err)
	}
	if y := p.transform(g); y.v[1] != 0 || y.v[2] != 0 {
		t.Errorf("unseen category one-hot %v, want zeros", y.v[1:])
	}
	// minmax
	p2, _ := fitPreprocessor(f, "minmax", "mean")
	if y := p2.transform(f); !near(y.v[0], 0, 1e-12) || !near(y.v[9], 1, 1e-12) {
		t.Errorf("minmax ends %v %v, want 0 and 1", y.v[0], y.v[9])
	}
}

func TestTaskInference(t *testing.T) {
	t.Parallel()
	f := dataset(t, "diabetes")
	m, err := Train(f, Config{Algorithm: "random_forest", Params: map[string]any{"n_estimators": 5.0}})
	if err != nil || m.Task != Regression {
		t.Fatalf("numeric label: task %v err %v, want regression", m.Task, err)
	}
	iris := dataset(t, "iris")
	m, err = Train(iris, Config{Algorithm: "random_forest", Params: map[string]any{"n_estimators": 5.0}})
	if err != nil || m.Task != Classification || len(m.Classes) != 3 {
		t.Fatalf("string label: %v %v", m, err)
	}
	// a numeric label with a classification-only algorithm is a classification
	w := dataset(t, "wine")
	num := make([]float64, w.Rows())
	for i, s := range w.Label.Str {
		num[i] = float64(s[0] - '0')
	}
	w.Label = &Column{Name: "cultivar", Kind: Numeric, Num: num}
	m, err = Train(w, Config{Algorithm: "naive_bayes"})
	if err != nil || m.Task != Classification || !slices.Equal(m.Classes, []string{"0", "1", "2"}) {
		t.Fatalf("numeric label, naive_bayes: %v %v", m, err)
	}
	// bool labels are two classes
	b := BoolColumn("y", []bool{true, false, true, false, true, false}, nil)
	bf := &Frame{Features: []Column{NumericColumn("x", []float64{1, 0, 1.2, 0.1, 0.9, 0.2})}, Label: &b}
	m, err = Train(bf, Config{Algorithm: "logistic_regression"})
	if err != nil || !slices.Equal(m.Classes, []string{"false", "true"}) {
		t.Fatalf("bool label: %v %v", m, err)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	iris := dataset(t, "iris")
	allNull := NumericColumn("y", []float64{math.NaN(), math.NaN()})
	strLabel := StringColumn("y", []string{"a", "b"}, nil)
	two := []Column{NumericColumn("x", []float64{1, 2})}
	cases := []struct {
		name string
		f    *Frame
		cfg  Config
		want []string // substrings of the error
	}{
		{"unknown algorithm", iris, Config{Algorithm: "xgboost"}, []string{`"xgboost"`, "gbdt", "random_forest", "logistic_regression"}},
		{"unknown hyper-parameter", iris, Config{Algorithm: "random_forest", Params: map[string]any{"trees": 3.0}}, []string{`"trees"`, "n_estimators", "max_depth"}},
		{"wrong type", iris, Config{Algorithm: "random_forest", Params: map[string]any{"n_estimators": "many"}}, []string{"n_estimators", "integer"}},
		{"not an integer", iris, Config{Algorithm: "knn", Params: map[string]any{"n_neighbors": 2.5}}, []string{"n_neighbors", "integer"}},
		{"out of range", iris, Config{Algorithm: "logistic_regression", Params: map[string]any{"C": 0.0}}, []string{"C", "> 0"}},
		{"bad choice", iris, Config{Algorithm: "knn", Params: map[string]any{"weights": "gaussian"}}, []string{"uniform", "distance"}},
		{"unknown scaler", iris, Config{Algorithm: "knn", Scaler: "robust"}, []string{"robust", "standard", "minmax"}},
		{"label all NULL", &Frame{Features: two, Label: &allNull}, Config{Algorithm: "linear_regression"}, []string{"all NULL"}},
		{"string label for regression", &Frame{Features: two, Label: &strLabel}, Config{Algorithm: "ridge"}, []string{"string", "regression"}},
		{"string label, task regression", &Frame{Features: two, Label: &strLabel}, Config{Algorithm: "gbdt", Task: Regression}, []string{"string", "regression"}},
		{"zero rows", &Frame{Features: []Column{NumericColumn("x", nil)}, Label: &Column{Name: "y", Kind: String}}, Config{Algorithm: "knn"}, []string{"zero rows"}},
		{"algorithm for another task", iris, Config{Algorithm: "lasso", Task: Classification}, []string{"lasso", "classification", "logistic_regression"}},
		{"no label", &Frame{Features: two}, Config{Algorithm: "knn", Task: Classification}, []string{"label"}},
		{"infinite feature", &Frame{Features: []Column{NumericColumn("x", []float64{1, math.Inf(1)})}, Label: &strLabel}, Config{Algorithm: "knn", Params: map[string]any{"n_neighbors": 1.0}}, []string{`feature "x" is +Inf in row 2`}},
		{"one class", &Frame{Features: two, Label: &Column{Name: "y", Kind: String, Str: []string{"a", "a"}}}, Config{Algorithm: "knn", Params: map[string]any{"n_neighbors": 1.0}}, []string{"one class"}},
	}
	for _, c := range cases {
		_, err := Train(c.f, c.cfg)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
	if _, err := Train(&Frame{Features: []Column{NumericColumn("x", nil)}, Label: &Column{Name: "y", Kind: Numeric}}, Config{Algorithm: "ridge"}); !errors.Is(err, ErrNoRows) {
		t.Errorf("zero rows: %v, want ErrNoRows", err)
	}
}

func TestPredictChecksFeatures(t *testing.T) {
	t.Parallel()
	iris := withExtras(dataset(t, "iris"))
	m, err := Train(iris, Config{Algorithm: "logistic_regression"})
	if err != nil {
		t.Fatal(err)
	}
	few := &Frame{Features: iris.Features[:3]}
	if _, err := m.Predict(few); err == nil || !strings.Contains(err.Error(), "takes 5 features") {
		t.Errorf("too few features: %v", err)
	}
	swapped := &Frame{Features: slices.Clone(iris.Features)}
	swapped.Features[4] = NumericColumn("color", make([]float64, iris.Rows()))
	if _, err := m.Predict(swapped); err == nil || !strings.Contains(err.Error(), "is numeric, model was trained on string") {
		t.Errorf("wrong kind: %v", err)
	}
	if _, err := Unmarshal([]byte(`{"format":"lakehoused-ml-model","version":99}`)); err == nil || !strings.Contains(err.Error(), "version 99 is not supported") {
		t.Errorf("unknown version: %v", err)
	}
	if _, err := Unmarshal([]byte(`{"format":"onnx","version":1}`)); err == nil {
		t.Error("another format loaded")
	}
}

func TestEvaluateAndHoldout(t *testing.T) {
	t.Parallel()
	f := dataset(t, "breast_cancer")
	m, met, err := Holdout(f, Config{Algorithm: "logistic_regression", Scaler: "standard"}, 0.2, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("breast_cancer holdout: %v", met)
	if met["accuracy"] < 0.94 {
		t.Errorf("holdout accuracy %.3f", met["accuracy"])
	}
	ev, err := Evaluate(m, f)
	if err != nil {
		t.Fatal(err)
	}
	if ev["accuracy"] < met["accuracy"]-0.05 || ev["roc_auc"] < 0.98 {
		t.Errorf("evaluate on all rows: %v", ev)
	}
	// clustering: three well separated blobs give a high silhouette and k-means finds them
	var xs, ys []float64
	for c, center := range [][2]float64{{0, 0}, {10, 0}, {0, 10}} {
		for i := range 30 {
			xs = append(xs, center[0]+float64(i%5)*0.1)
			ys = append(ys, center[1]+float64(i/5)*0.1+float64(c)*0.01)
		}
	}
	blobs := &Frame{Features: []Column{NumericColumn("x", xs), NumericColumn("y", ys)}}
	km, err := Train(blobs, Config{Algorithm: "kmeans", Params: map[string]any{"n_clusters": 3.0}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err = Evaluate(km, blobs)
	if err != nil {
		t.Fatal(err)
	}
	if ev["silhouette"] < 0.9 {
		t.Errorf("blob silhouette %v", ev)
	}
	cv, err := CrossValidate(blobs, Config{Algorithm: "kmeans", Params: map[string]any{"n_clusters": 3.0}}, CVOptions{})
	if err != nil || cv.Metric != "silhouette" || cv.Score < 0.9 {
		t.Errorf("kmeans cv %+v %v", cv, err)
	}
}

func TestOtherRegressorsAndSVM(t *testing.T) {
	t.Parallel()
	d := dataset(t, "diabetes")
	ols, _ := CrossValidate(d, Config{Algorithm: "linear_regression"}, CVOptions{})
	// lasso with a tiny penalty is OLS; with a huge one it predicts the mean (r2 ≤ 0)
	tiny, err := CrossValidate(d, Config{Algorithm: "lasso", Params: map[string]any{"alpha": 1e-6, "tol": 1e-10, "max_iter": 100000.0}}, CVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !near(tiny.Score, ols.Score, 1e-3) {
		t.Errorf("lasso alpha 1e-6 r2 %.5f, OLS %.5f", tiny.Score, ols.Score)
	}
	m, err := Train(d, Config{Algorithm: "elastic_net", Params: map[string]any{"alpha": 1e6}})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range m.est.(*linearModel).W[:10] {
		if w != 0 {
			t.Errorf("elastic net alpha 1e6 left a coefficient %v", w)
		}
	}
	for _, c := range []struct {
		cfg Config
		min float64
	}{{Config{Algorithm: "lasso"}, 0.45}, {Config{Algorithm: "elastic_net", Scaler: "standard"}, 0.40}, {Config{Algorithm: "knn", Scaler: "standard"}, 0.35}} {
		res, err := CrossValidate(d, c.cfg, CVOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("diabetes %s (%s) r2 %.4f", c.cfg.Algorithm, c.cfg.Scaler, res.Score)
		if res.Score < c.min {
			t.Errorf("%s r2 %.4f < %.2f", c.cfg.Algorithm, res.Score, c.min)
		}
	}
	for _, ds := range []string{"breast_cancer", "iris"} {
		res, err := CrossValidate(dataset(t, ds), Config{Algorithm: "linear_svm", Scaler: "standard"}, CVOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s linear_svm scaled accuracy %.4f", ds, res.Score)
		if res.Score < 0.94 {
			t.Errorf("%s linear_svm accuracy %.4f", ds, res.Score)
		}
	}
}

func TestCrossValidatePruneHook(t *testing.T) {
	t.Parallel()
	stop := errors.New("pruned")
	var seen []int
	_, err := CrossValidate(dataset(t, "iris"), Config{Algorithm: "naive_bayes"}, CVOptions{OnFold: func(fold int, m Metrics) error {
		score := m["accuracy"]
		seen = append(seen, fold)
		if score <= 0 || score > 1 {
			t.Errorf("fold score %v", score)
		}
		if fold == 1 {
			return stop
		}
		return nil
	}})
	if !errors.Is(err, stop) || !slices.Equal(seen, []int{0, 1}) {
		t.Errorf("err %v folds %v, want the hook's error after fold 1", err, seen)
	}
	// stratified folds: each of iris's 3×50 classes has 10 rows in each of 5 folds
	l, _ := encodeLabels(dataset(t, "iris"), Classification)
	folds := assignFolds(len(l.y), l.y, true, CVOptions{Folds: 5, Seed: 9})
	count := map[[2]int]int{}
	for i, fo := range folds {
		count[[2]int{fo, int(l.y[i])}]++
	}
	for k, v := range count {
		if v != 10 {
			t.Errorf("fold %d class %d has %d rows, want 10", k[0], k[1], v)
		}
	}
}

// TestPackedTreesMatchTheirNodes checks the packed, breadth-first trees prediction walks
// against a plain walk of the exported node slices.
func TestPackedTreesMatchTheirNodes(t *testing.T) {
	t.Parallel()
	f := dataset(t, "diabetes")
	m, err := Train(f, Config{Algorithm: "random_forest", Params: map[string]any{"n_estimators": 10.0}})
	if err != nil {
		t.Fatal(err)
	}
	x := m.prep.transform(f)
	got := make([]float64, x.n)
	m.est.predict(x, got)
	for i := 0; i < x.n; i++ {
		var want float64
		for _, tr := range m.est.(*randomForest).Trees {
			n := int32(0)
			for tr.Feature[n] >= 0 {
				if x.row(i)[tr.Feature[n]] <= tr.Threshold[n] {
					n = tr.Left[n]
				} else {
					n = tr.Right[n]
				}
			}
			want += tr.Value[tr.Left[n]] / 10
			if !slices.Equal(tr.leaf(x.row(i)), tr.Value[tr.Left[n]:tr.Left[n]+1]) {
				t.Fatalf("row %d: leaf() disagrees with the node walk", i)
			}
		}
		if math.Abs(got[i]-want) > 1e-9*math.Abs(want) {
			t.Fatalf("row %d: forest %v, node walk %v", i, got[i], want)
		}
	}
}
