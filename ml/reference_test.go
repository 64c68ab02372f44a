package ml

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/internal/testdata"
)

// dataset loads one of the shared ML datasets. wine's cultivar is numeric in the file but a
// class, so classification datasets read their label as a string.
func dataset(t testing.TB, name string) *Frame {
	t.Helper()
	labels := map[string]string{"iris": "species", "wine": "cultivar", "breast_cancer": "diagnosis", "digits": "digit", "diabetes": "progression"}
	kind := String
	if name == "diabetes" {
		kind = Numeric
	}
	fh, err := os.Open(filepath.Join(testdata.Dir(t), "ml", name+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f, err := ReadCSV(fh, labels[name], kind)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var classificationSets = [4]string{"iris", "wine", "breast_cancer", "digits"}

// The scikit-learn 1.2.1 reference accuracies of shared/testdata/ml/README.md (5-fold
// StratifiedKFold(shuffle=True, random_state=0)) for iris, wine, breast_cancer, digits. The
// tests deal the same folds (CVOptions.ScikitLearnFolds), so a deterministic model must match
// to the rounding of the table; random ones (trees) differ by their own randomness only.
//
// exact marks the deterministic models that converge: they must reproduce the table to its
// rounding (±0.0005). Raw-feature logistic regression stops at max_iter=100 before converging,
// in scikit-learn as here, so where it stops depends on the optimiser's path.
var classifierReferences = []struct {
	name   string
	cfg    Config
	scores [4]float64
	exact  bool
}{
	{"logistic regression raw", Config{Algorithm: "logistic_regression"}, [4]float64{0.960, 0.950, 0.951, 0.963}, false},
	{"logistic regression scaled", Config{Algorithm: "logistic_regression", Scaler: "standard"}, [4]float64{0.960, 0.983, 0.979, 0.969}, true},
	{"naive bayes", Config{Algorithm: "naive_bayes"}, [4]float64{0.960, 0.972, 0.939, 0.851}, true},
	{"knn raw", Config{Algorithm: "knn"}, [4]float64{0.953, 0.663, 0.932, 0.986}, true},
	{"knn scaled", Config{Algorithm: "knn", Scaler: "standard"}, [4]float64{0.953, 0.961, 0.965, 0.977}, true},
	{"decision tree", Config{Algorithm: "decision_tree"}, [4]float64{0.933, 0.927, 0.926, 0.859}, false},
	{"random forest", Config{Algorithm: "random_forest"}, [4]float64{0.940, 0.972, 0.965, 0.973}, false},
	{"gbdt (gradient boosting)", Config{Algorithm: "gbdt"}, [4]float64{0.933, 0.944, 0.965, 0.966}, false},
}

// sklearnProtocol is the README's protocol: scikit-learn's own shuffled folds, random_state 0.
var sklearnProtocol = CVOptions{Folds: 5, Seed: 0, ScikitLearnFolds: true}

// TestUnshuffledFoldsMatchScikitLearn) naive Bayes scores 0.8069 on digits, which is
// cross_val_score(GaussianNB(), digits, cv=5); the model is the same and the shuffled gap is
// the fold draw. Over our CV seeds 0-9 it scores 0.834-0.846.
var knownMisses = map[string]string{
	// Over CV seeds 0-9 our tree scores 0.899-0.938 (mean 0.916) on wine and 0.841-0.865 (mean
	// 0.854) on digits: scikit-learn's single draw (random_state=None) lies inside that spread.
	"decision tree/wine":   "single CART tree, fold-to-fold spread ±0.02; sklearn's figure is inside our seed spread",
	"decision tree/digits": "single CART tree, fold-to-fold spread; sklearn's figure is inside our seed spread",
	"naive bayes/digits":   "identical to sklearn on sklearn's unshuffled folds (0.8069); 0.834-0.846 over our shuffled seeds",
}

// TestUnshuffledFoldsMatchScikitLearn compares with the README's unshuffled cross_val_score
// figures, for which our folds are scikit-learn's exactly: a deterministic model must give the
// same score to the fourth decimal.
func TestUnshuffledFoldsMatchScikitLearn(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		ds  string
		cfg Config
		ref float64
		tol float64
	}{
		{"iris", Config{Algorithm: "logistic_regression"}, 0.9733, 0.0001},
		{"breast_cancer", Config{Algorithm: "random_forest"}, 0.9631, 0.01}, // random: same folds, other trees
		{"digits", Config{Algorithm: "naive_bayes"}, 0.8069, 0.0001},        // cross_val_score(GaussianNB(), digits, cv=5)
	} {
		res, err := CrossValidate(dataset(t, c.ds), c.cfg, CVOptions{Unshuffled: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("unshuffled %-14s %-20s accuracy %.4f  sklearn %.4f", c.ds, c.cfg.Algorithm, res.Score, c.ref)
		if math.Abs(res.Score-c.ref) > c.tol {
			t.Errorf("%s %s unshuffled: %.4f, scikit-learn %.4f", c.ds, c.cfg.Algorithm, res.Score, c.ref)
		}
	}
}

func TestClassifiersMatchScikitLearn(t *testing.T) {
	t.Parallel()
	frames := map[string]*Frame{}
	for _, ds := range classificationSets {
		frames[ds] = dataset(t, ds)
	}
	for _, ref := range classifierReferences {
		for i, ds := range classificationSets {
			start := time.Now()
			res, err := CrossValidate(frames[ds], ref.cfg, sklearnProtocol)
			if err != nil {
				t.Fatalf("%s on %s: %v", ref.name, ds, err)
			}
			t.Logf("%-28s %-14s accuracy %.4f  sklearn %.3f  diff %+.4f  cv %v", ref.name, ds, res.Score, ref.scores[i],
				res.Score-ref.scores[i], time.Since(start).Round(time.Millisecond))
			if res.Score < ref.scores[i]-0.01 {
				t.Errorf("%s on %s: accuracy %.4f, scikit-learn %.3f: more than 0.01 worse", ref.name, ds, res.Score, ref.scores[i])
			}
			if ref.exact && math.Abs(res.Score-ref.scores[i]) > 0.0005+1e-9 {
				t.Errorf("%s on %s: accuracy %.4f, scikit-learn %.3f on the same folds", ref.name, ds, res.Score, ref.scores[i])
			}
		}
	}
}

// unitNormColumns centres each feature and scales it to unit L2 norm over all rows, which is
// how scikit-learn's load_diabetes ships the features its reference figures were measured on.
func unitNormColumns(f *Frame) *Frame {
	out := &Frame{Label: f.Label}
	for _, c := range f.Features {
		m := mean(c.Num)
		var ss float64
		for _, v := range c.Num {
			ss += sq(v - m)
		}
		norm := math.Sqrt(ss)
		v := make([]float64, len(c.Num))
		for i, x := range c.Num {
			v[i] = (x - m) / norm
		}
		out.Features = append(out.Features, NumericColumn(c.Name, v))
	}
	return out
}

func TestRegressorsMatchScikitLearn(t *testing.T) {
	t.Parallel()
	raw := dataset(t, "diabetes")
	scaled := unitNormColumns(raw)
	for _, c := range []struct {
		name string
		f    *Frame
		cfg  Config
		ref  float64
	}{
		{"linear regression", raw, Config{Algorithm: "linear_regression"}, 0.489},
		// Ridge's penalty depends on the feature scale: the reference used scikit-learn's
		// unit-norm diabetes features (on the raw ones alpha=1 barely shrinks: r2 ≈ 0.485).
		{"ridge alpha=1 (sklearn's scaled features)", scaled, Config{Algorithm: "ridge"}, 0.421},
		{"random forest", raw, Config{Algorithm: "random_forest"}, 0.419},
		// scikit-learn's GradientBoostingRegressor grows depth-3 trees with 1-row leaves; gbdt
		// with that tree shape is compared with it. gbdt's own HistGradientBoosting defaults (31
		// leaves of ≥ 20 rows) score lower on these 442 rows; see the next test.
		{"gbdt, depth 3, 1-row leaves (gradient boosting)", raw, Config{Algorithm: "gbdt", Params: map[string]any{"max_depth": 3, "min_samples_leaf": 1}}, 0.421},
	} {
		res, err := CrossValidate(c.f, c.cfg, sklearnProtocol) // KFold(shuffle=True, random_state=0)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Logf("diabetes %-48s r2 %.4f  sklearn %.3f  diff %+.4f  mse %.0f  mae %.1f", c.name, res.Score, c.ref, res.Score-c.ref, res.Metrics["mse"], res.Metrics["mae"])
		if math.Abs(res.Score-c.ref) > 0.02 {
			t.Errorf("%s: r2 %.4f, scikit-learn %.3f: more than 0.02 apart", c.name, res.Score, c.ref)
		}
		if c.name == "linear regression" {
			// reference mse 2978, mae 44.3 with scikit-learn's folds
			if math.Abs(res.Metrics["mse"]-2978) > 1 || math.Abs(res.Metrics["mae"]-44.3) > 0.05 {
				t.Errorf("linear regression: mse %.0f mae %.1f, scikit-learn 2978 and 44.3", res.Metrics["mse"], res.Metrics["mae"])
			}
		}
	}
}

// TestGBDTDefaultsOnDiabetes records what gbdt scores with its HistGradientBoosting defaults:
// 0.393 on scikit-learn's folds, below GradientBoostingRegressor's 0.421: 31-leaf trees with
// 20-row leaves fit 354 training rows less well than depth-3 trees (see the test above).
func TestGBDTDefaultsOnDiabetes(t *testing.T) {
	t.Parallel()
	res, err := CrossValidate(dataset(t, "diabetes"), Config{Algorithm: "gbdt"}, sklearnProtocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("diabetes gbdt defaults r2 %.4f (sklearn gradient boosting 0.421; KNOWN MISS of the defaults)", res.Score)
	if res.Score < 0.37 {
		t.Errorf("gbdt defaults on diabetes: r2 %.4f, was 0.393 when measured", res.Score)
	}
}

func TestBreastCancerLogisticMetrics(t *testing.T) {
	t.Parallel()
	f := dataset(t, "breast_cancer")
	res, err := CrossValidate(f, Config{Algorithm: "logistic_regression", Scaler: "standard"}, sklearnProtocol)
	if err != nil {
		t.Fatal(err)
	}
	// scikit-learn's f1 figure is the binary f1 of its positive class 1, which is "benign"
	// in load_breast_cancer's encoding; ours is macro, so the benign class's f1 is recomputed.
	l, _ := encodeLabels(f, Classification)
	rc, _ := resolve(f, Config{Algorithm: "logistic_regression", Scaler: "standard"})
	folds := assignFolds(len(l.y), l.y, true, sklearnProtocol)
	var benignF1 float64
	for k := range 5 {
		var train, test []int
		for i, fo := range folds {
			if fo == k {
				test = append(test, i)
			} else {
				train = append(train, i)
			}
		}
		m, err := fit(f.take(train), pick(l.y, train), l.classes, rc, 0)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := m.Predict(f.take(test))
		truth, pred := make([]int, len(test)), make([]int, len(test))
		for i, r := range test {
			truth[i], pred[i] = int(l.y[r]), int(p.Values[i])
		}
		_, _, f1 := ClassScores(truth, pred, 0) // classes sort as benign, malignant
		benignF1 += f1 / 5
	}
	t.Logf("breast_cancer scaled logistic regression: roc_auc %.4f (sklearn 0.9955)  log_loss %.4f (0.074)  f1 benign %.4f (0.983)  f1 macro %.4f  accuracy %.4f",
		res.Metrics["roc_auc"], res.Metrics["log_loss"], benignF1, res.Metrics["f1"], res.Score)
	if math.Abs(res.Metrics["roc_auc"]-0.9955) > 0.0005 {
		t.Errorf("roc_auc %.4f, scikit-learn 0.9955", res.Metrics["roc_auc"])
	}
	if math.Abs(res.Metrics["log_loss"]-0.074) > 0.001 {
		t.Errorf("log_loss %.4f, scikit-learn 0.074", res.Metrics["log_loss"])
	}
	if math.Abs(benignF1-0.983) > 0.001 {
		t.Errorf("benign f1 %.4f, scikit-learn 0.983", benignF1)
	}
}
