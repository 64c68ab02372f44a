package ml

import (
	"errors"
	"math"
	"slices"
)

// Metrics maps metric names (accuracy, f1, r2, …) to values.
type Metrics map[string]float64

// PrimaryMetric is the metric cross-validation scores a task by; higher is better for all three.
func PrimaryMetric(task Task) string {
	switch task {
	case Classification:
		return "accuracy"
	case Regression:
		return "r2"
	}
	return "silhouette"
}

// Accuracy is the fraction of predictions equal to the truth.
func Accuracy(truth, pred []int) float64 {
	hit := 0
	for i := range truth {
		if truth[i] == pred[i] {
			hit++
		}
	}
	return float64(hit) / float64(len(truth))
}

// ClassScores returns precision, recall and F1 of one class (0 where undefined, as
// scikit-learn's zero_division default reports).
func ClassScores(truth, pred []int, class int) (precision, recall, f1 float64) {
	var tp, fp, fn float64
	for i := range truth {
		switch {
		case truth[i] == class && pred[i] == class:
			tp++
		case pred[i] == class:
			fp++
		case truth[i] == class:
			fn++
		}
	}
	if tp+fp > 0 {
		precision = tp / (tp + fp)
	}
	if tp+fn > 0 {
		recall = tp / (tp + fn)
	}
	if precision+recall > 0 {
		f1 = 2 * precision * recall / (precision + recall)
	}
	return
}

// MacroScores averages ClassScores over the classes that appear in truth or pred.
func MacroScores(truth, pred []int) (precision, recall, f1 float64) {
	var present []int
	for _, v := range slices.Concat(truth, pred) {
		if !slices.Contains(present, v) {
			present = append(present, v)
		}
	}
	for _, c := range present {
		p, r, f := ClassScores(truth, pred, c)
		precision += p
		recall += r
		f1 += f
	}
	n := float64(len(present))
	return precision / n, recall / n, f1 / n
}

// ROCAUC is the area under the ROC curve: for two classes, of the score of class 1; for more,
// the macro average of one-vs-rest areas. proba has k values per row. Classes absent from
// truth are left out of the average; with fewer than two classes present it is NaN.
func ROCAUC(truth []int, proba []float64, k int) float64 {
	if k == 2 {
		scores := make([]float64, len(truth))
		for i := range truth {
			scores[i] = proba[i*2+1]
		}
		return binaryAUC(truth, scores, 1)
	}
	var sum float64
	n := 0
	scores := make([]float64, len(truth))
	for c := range k {
		for i := range truth {
			scores[i] = proba[i*k+c]
		}
		if a := binaryAUC(truth, scores, c); !math.IsNaN(a) {
			sum += a
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// binaryAUC is the Mann-Whitney statistic with tied scores sharing their average rank.
func binaryAUC(truth []int, scores []float64, pos int) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return 0
	})
	var rankSum, nPos float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j
		for q := i; q < j; q++ {
			if truth[idx[q]] == pos {
				rankSum += avg
				nPos++
			}
		}
		i = j
	}
	nNeg := float64(len(truth)) - nPos
	if nPos == 0 || nNeg == 0 {
		return math.NaN()
	}
	return (rankSum - nPos*(nPos+1)/2) / (nPos * nNeg)
}

// LogLoss is the mean negative log probability of the true class, probabilities clipped to
// [1e-15, 1-1e-15] as scikit-learn does.
func LogLoss(truth []int, proba []float64, k int) float64 {
	var s float64
	for i, c := range truth {
		p := math.Min(math.Max(proba[i*k+c], 1e-15), 1-1e-15)
		s -= math.Log(p)
	}
	return s / float64(len(truth))
}

// R2 is the coefficient of determination, 1 - SSres/SStot. When the truth is constant it is 1
// for an exact prediction and 0 otherwise, as in scikit-learn.
func R2(truth, pred []float64) float64 {
	m := mean(truth)
	var res, tot float64
	for i := range truth {
		res += sq(truth[i] - pred[i])
		tot += sq(truth[i] - m)
	}
	if tot == 0 {
		if res == 0 {
			return 1
		}
		return 0
	}
	return 1 - res/tot
}

// MSE is the mean squared error.
func MSE(truth, pred []float64) float64 {
	var s float64
	for i := range truth {
		s += sq(truth[i] - pred[i])
	}
	return s / float64(len(truth))
}

// MAE is the mean absolute error.
func MAE(truth, pred []float64) float64 {
	var s float64
	for i := range truth {
		s += math.Abs(truth[i] - pred[i])
	}
	return s / float64(len(truth))
}

// ErrSilhouette is returned when the silhouette is undefined: fewer than two clusters, or as
// many clusters as rows.
var ErrSilhouette = errors.New("ml: silhouette needs between 2 and n-1 clusters")

// Silhouette is the mean silhouette coefficient of rows x (n×d, row-major) in clusters
// labels, by Euclidean distance. A row alone in its cluster scores 0.
func Silhouette(x []float64, d int, labels []int) (float64, error) {
	n := len(labels)
	k := 0
	for _, l := range labels {
		k = max(k, l+1)
	}
	size := make([]float64, k)
	for _, l := range labels {
		size[l]++
	}
	present := 0
	for _, s := range size {
		if s > 0 {
			present++
		}
	}
	if present < 2 || present >= n {
		return 0, ErrSilhouette
	}
	var total float64
	sums := make([]float64, k)
	for i := range n {
		clear(sums)
		xi := x[i*d : (i+1)*d]
		for j := range n {
			if j != i {
				sums[labels[j]] += math.Sqrt(sqDist(xi, x[j*d:(j+1)*d]))
			}
		}
		own := labels[i]
		if size[own] <= 1 {
			continue
		}
		a := sums[own] / (size[own] - 1)
		b := math.Inf(1)
		for c := range k {
			if c != own && size[c] > 0 {
				b = math.Min(b, sums[c]/size[c])
			}
		}
		if m := math.Max(a, b); m > 0 {
			total += (b - a) / m
		}
	}
	return total / float64(n), nil
}

// scoreClassification computes every classification metric from class indexes and k
// probabilities per row.
func scoreClassification(truth []int, proba []float64, k int) Metrics {
	pred := make([]int, len(truth))
	for i := range truth {
		pred[i] = argmax(proba[i*k : (i+1)*k])
	}
	p, r, f := MacroScores(truth, pred)
	return Metrics{"accuracy": Accuracy(truth, pred), "precision": p, "recall": r, "f1": f,
		"roc_auc": ROCAUC(truth, proba, k), "log_loss": LogLoss(truth, proba, k)}
}

func scoreRegression(truth, pred []float64) Metrics {
	mse := MSE(truth, pred)
	return Metrics{"r2": R2(truth, pred), "mse": mse, "rmse": math.Sqrt(mse), "mae": MAE(truth, pred)}
}
