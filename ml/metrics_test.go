package ml

import (
	"errors"
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestMetricsHandComputed(t *testing.T) {
	t.Parallel()
	// truth 0 0 1 1 2 2, pred 0 1 1 1 2 0
	truth := []int{0, 0, 1, 1, 2, 2}
	pred := []int{0, 1, 1, 1, 2, 0}
	if got := Accuracy(truth, pred); !near(got, 4.0/6, 1e-12) {
		t.Errorf("accuracy %v, want 4/6", got)
	}
	// class 0: tp1 fp1 fn1 → p .5 r .5 f .5; class 1: tp2 fp1 fn0 → p 2/3 r 1 f .8;
	// class 2: tp1 fp0 fn1 → p 1 r .5 f 2/3
	p, r, f := MacroScores(truth, pred)
	if !near(p, (0.5+2.0/3+1)/3, 1e-12) || !near(r, (0.5+1+0.5)/3, 1e-12) || !near(f, (0.5+0.8+2.0/3)/3, 1e-12) {
		t.Errorf("macro p %v r %v f1 %v", p, r, f)
	}
	// AUC: scores for positives 0.8 0.4, negatives 0.4 0.1 → pairs: (0.8>0.4) (0.8>0.1) (0.4=0.4 → ½) (0.4>0.1) = 3.5/4
	bt := []int{1, 1, 0, 0}
	proba := []float64{0.2, 0.8, 0.6, 0.4, 0.6, 0.4, 0.9, 0.1}
	if got := ROCAUC(bt, proba, 2); !near(got, 0.875, 1e-12) {
		t.Errorf("auc %v, want 0.875", got)
	}
	// log loss: -(ln .8 + ln .4 + ln .6 + ln .9)/4
	want := -(math.Log(0.8) + math.Log(0.4) + math.Log(0.6) + math.Log(0.9)) / 4
	if got := LogLoss(bt, proba, 2); !near(got, want, 1e-12) {
		t.Errorf("log loss %v, want %v", got, want)
	}
	// clipping: a zero probability of the truth costs -ln 1e-15, not +Inf
	if got := LogLoss([]int{0}, []float64{0, 1}, 2); !near(got, -math.Log(1e-15), 1e-9) {
		t.Errorf("clipped log loss %v", got)
	}
	// multiclass AUC, one-vs-rest macro: a perfect ranking is 1
	mp := []float64{0.8, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.8}
	if got := ROCAUC([]int{0, 1, 2}, mp, 3); got != 1 {
		t.Errorf("multiclass auc %v, want 1", got)
	}
	yt, yp := []float64{3, -0.5, 2, 7}, []float64{2.5, 0.0, 2, 8}
	if got := MSE(yt, yp); !near(got, 0.375, 1e-12) {
		t.Errorf("mse %v, want 0.375", got)
	}
	if got := MAE(yt, yp); !near(got, 0.5, 1e-12) {
		t.Errorf("mae %v, want 0.5", got)
	}
	// scikit-learn's r2_score docstring example: 0.9486081370449679
	if got := R2(yt, yp); !near(got, 0.9486081370449679, 1e-12) {
		t.Errorf("r2 %v, want 0.9486", got)
	}
	if got := R2([]float64{1, 1}, []float64{1, 1}); got != 1 {
		t.Errorf("r2 of an exact constant %v, want 1", got)
	}
}

func TestSilhouette(t *testing.T) {
	t.Parallel()
	// points on a line: 0, 1 in cluster 0; 10, 11 in cluster 1.
	// row 0: a=1, b=(10+11)/2=10.5 → 1-1/10.5; row 1: a=1, b=9.5 → 1-1/9.5; symmetric for the others.
	x := []float64{0, 1, 10, 11}
	got, err := Silhouette(x, 1, []int{0, 0, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	want := (2*(1-1/10.5) + 2*(1-1/9.5)) / 4
	if !near(got, want, 1e-12) {
		t.Errorf("silhouette %v, want %v", got, want)
	}
	if _, err := Silhouette(x, 1, []int{0, 0, 0, 0}); !errors.Is(err, ErrSilhouette) {
		t.Errorf("one cluster: err %v, want ErrSilhouette", err)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	lab := StringColumn("y", []string{"b", "a", "", "b"}, []bool{true, true, false, true})
	f := &Frame{Features: []Column{NumericColumn("x", []float64{1, math.NaN(), 3, 3})}, Label: &lab}
	info, err := Describe(f)
	if err != nil {
		t.Fatal(err)
	}
	x, y := info[0], info[1]
	// x: 1, 3, 3 → mean 7/3, sample sd sqrt(((4/3)²+2(2/3)²)/2)
	if x.Min != 1 || x.Max != 3 || !near(x.Mean, 7.0/3, 1e-12) || !near(x.Stddev, math.Sqrt((16.0/9+8.0/9)/2), 1e-12) || x.Nulls != 1 || x.Distinct != 2 {
		t.Errorf("numeric %+v", x)
	}
	if y.MinString != "a" || y.MaxString != "b" || y.Nulls != 1 || y.Distinct != 2 || !math.IsNaN(y.Mean) {
		t.Errorf("string %+v", y)
	}
}
