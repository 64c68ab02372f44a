package ml

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// tile repeats f's rows until it has n rows (features only).
func tile(f *Frame, n int) *Frame {
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i % f.Rows()
	}
	t := f.take(rows)
	t.Label = nil
	return t
}

// BenchmarkPredict measures batch prediction, preprocessing included, in rows/s on the
// breast_cancer features (30 numeric columns) tiled to 100k rows. Run with -cpu 1: prediction
// is single-threaded, and the goals (≥ 1M rows/s linear, ≥ 200k rows/s 100-tree forest) are
// per core.
func BenchmarkPredict(b *testing.B) {
	f := dataset(b, "breast_cancer")
	batch := tile(f, 100000)
	for _, cfg := range []Config{
		{Algorithm: "logistic_regression", Scaler: "standard"},
		{Algorithm: "linear_svm", Scaler: "standard"},
		{Algorithm: "naive_bayes"},
		{Algorithm: "decision_tree"},
		{Algorithm: "random_forest"},
		{Algorithm: "gbdt"},
	} {
		m, err := Train(f, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(cfg.Algorithm, func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Predict(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch.Rows())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
	d := dataset(b, "diabetes")
	dbatch := tile(d, 100000)
	for _, alg := range []string{"linear_regression", "ridge", "random_forest"} {
		m, err := Train(d, Config{Algorithm: alg})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("regression/"+alg, func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Predict(dbatch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(dbatch.Rows())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkFit measures one fit on all rows per algorithm and dataset, with default
// hyper-parameters (random forest and gbdt use every core).
func BenchmarkFit(b *testing.B) {
	for _, ds := range []string{"iris", "wine", "breast_cancer", "digits", "diabetes"} {
		f := dataset(b, ds)
		algs := AlgorithmsFor(Classification)
		if ds == "diabetes" {
			algs = AlgorithmsFor(Regression)
		}
		for _, alg := range algs {
			b.Run(ds+"/"+alg, func(b *testing.B) {
				for b.Loop() {
					if _, err := Train(f, Config{Algorithm: alg}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSearchThroughput runs a 40-trial random search on breast_cancer with parallelism 1
// and 2 and reports trials/s (the goal is ≥ 1.8× with 2). The algorithms are single-threaded
// ones, so parallelism 1 uses one core; a random forest would already use all of them.
func BenchmarkSearchThroughput(b *testing.B) {
	f := dataset(b, "breast_cancer")
	space := []byte(`{"algorithm": ["logistic_regression", "knn", "decision_tree", "naive_bayes"], "scaler": ["none", "standard"],
		"decision_tree": {"max_depth": {"int": [2, 12]}}, "knn": {"n_neighbors": {"int": [1, 15]}}}`)
	for _, par := range []int{1, 2} {
		b.Run(fmt.Sprintf("parallelism=%d", par), func(b *testing.B) {
			trials := 0
			start := time.Now()
			for b.Loop() {
				res, err := Search(context.Background(), f, space, SearchOptions{Sampler: "random", MaxTrials: 40, Parallelism: par})
				if err != nil {
					b.Fatal(err)
				}
				trials += len(res.Study.Trials)
			}
			b.ReportMetric(float64(trials)/time.Since(start).Seconds(), "trials/s")
		})
	}
}

// BenchmarkFitLargeGBDT fits gbdt regression on 100k synthetic rows × 20 features, the size
// where histogram building dominates and is spread over the cores.
func BenchmarkFitLargeGBDT(b *testing.B) {
	const n, d = 100000, 20
	rng := rand.New(rand.NewPCG(1, 2))
	f := &Frame{}
	y := make([]float64, n)
	for j := range d {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
			y[i] += float64(j%3) * v[i]
		}
		f.Features = append(f.Features, NumericColumn(fmt.Sprintf("x%d", j), v))
	}
	lab := NumericColumn("y", y)
	f.Label = &lab
	for b.Loop() {
		if _, err := Train(f, Config{Algorithm: "gbdt", Params: map[string]any{"max_iter": 20.0}}); err != nil {
			b.Fatal(err)
		}
	}
}
