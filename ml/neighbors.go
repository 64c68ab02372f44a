package ml

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// gaussianNB is Gaussian naive Bayes as in scikit-learn: per-class feature means and
// variances, each variance widened by var_smoothing times the largest feature variance so a
// feature constant within a class does not give zero probability to every other value.
type gaussianNB struct {
	VarSmoothing float64   `json:"var_smoothing"`
	K            int       `json:"classes"`
	LogPrior     []float64 `json:"log_prior"`
	Mean         []float64 `json:"mean"` // K×d
	Var          []float64 `json:"var"`  // K×d
}

func (m *gaussianNB) fit(x *dense, y []float64, k int, _ uint64) error {
	d := x.d
	m.K = k
	m.Mean, m.Var = make([]float64, k*d), make([]float64, k*d)
	counts := make([]float64, k)
	for i := 0; i < x.n; i++ {
		c := int(y[i])
		counts[c]++
		for j, v := range x.row(i) {
			m.Mean[c*d+j] += v
		}
	}
	for c := range k {
		for j := range d {
			m.Mean[c*d+j] /= math.Max(counts[c], 1)
		}
	}
	for i := 0; i < x.n; i++ {
		c := int(y[i])
		for j, v := range x.row(i) {
			m.Var[c*d+j] += sq(v - m.Mean[c*d+j])
		}
	}
	// epsilon from the variance of each feature over all rows
	var maxVar float64
	for j := range d {
		var s, ss float64
		for i := 0; i < x.n; i++ {
			s += x.v[i*d+j]
		}
		mu := s / float64(x.n)
		for i := 0; i < x.n; i++ {
			ss += sq(x.v[i*d+j] - mu)
		}
		maxVar = math.Max(maxVar, ss/float64(x.n))
	}
	eps := m.VarSmoothing * maxVar
	m.LogPrior = make([]float64, k)
	for c := range k {
		// a class missing from a training fold gets a vanishing (not -Inf) prior: the model
		// must stay finite to be saved
		m.LogPrior[c] = math.Log(math.Max(counts[c], 1e-300) / float64(x.n))
		if counts[c] == 0 {
			counts[c] = 1
		}
		for j := range d {
			m.Var[c*d+j] = m.Var[c*d+j]/counts[c] + eps
			if m.Var[c*d+j] == 0 { // every feature constant everywhere
				m.Var[c*d+j] = 1e-300
			}
		}
	}
	return nil
}

func (m *gaussianNB) predict(x *dense, out []float64) {
	d, k := x.d, m.K
	for i := 0; i < x.n; i++ {
		xi := x.row(i)
		o := out[i*k : (i+1)*k]
		for c := range k {
			s := m.LogPrior[c]
			for j, v := range xi {
				vr := m.Var[c*d+j]
				s -= 0.5*math.Log(2*math.Pi*vr) + 0.5*sq(v-m.Mean[c*d+j])/vr
			}
			o[c] = s
		}
		softmaxInPlace(o)
	}
}

// knn is k-nearest neighbours by Euclidean distance over the (preprocessed) training rows,
// which it keeps. Equal distances go to the earlier training row, so results are repeatable.
type knn struct {
	K          int       `json:"n_neighbors"`
	Distance   bool      `json:"distance_weights"`
	Regression bool      `json:"regression"`
	Classes    int       `json:"classes"`
	D          int       `json:"dims"`
	X          []float64 `json:"x"`
	Y          []float64 `json:"y"`
}

func (m *knn) fit(x *dense, y []float64, k int, _ uint64) error {
	if x.n < m.K {
		return fmt.Errorf("n_neighbors is %d but there are only %d training rows; lower n_neighbors", m.K, x.n)
	}
	m.Classes, m.D = k, x.d
	m.X, m.Y = append([]float64(nil), x.v...), append([]float64(nil), y...)
	return nil
}

func (m *knn) predict(x *dense, out []float64) {
	n := len(m.Y)
	k := m.K
	idx := make([]int, k)
	dist := make([]float64, k)
	for i := 0; i < x.n; i++ {
		xi := x.row(i)
		found := 0
		for t := range n {
			xt := m.X[t*m.D : (t+1)*m.D]
			var s float64
			for j, v := range xi {
				dv := v - xt[j]
				s += dv * dv
			}
			if found == k && s >= dist[k-1] {
				continue
			}
			// insertion into the sorted k best; strict < keeps the earlier row first on ties
			p := found
			if found < k {
				found++
			} else {
				p = k - 1
			}
			for p > 0 && s < dist[p-1] {
				dist[p], idx[p] = dist[p-1], idx[p-1]
				p--
			}
			dist[p], idx[p] = s, t
		}
		weights := make([]float64, k)
		for a := range k {
			weights[a] = 1
		}
		if m.Distance {
			if dist[0] == 0 { // exact matches take all the weight, as in scikit-learn
				for a := range k {
					weights[a] = 0
					if dist[a] == 0 {
						weights[a] = 1
					}
				}
			} else {
				for a := range k {
					weights[a] = 1 / math.Sqrt(dist[a])
				}
			}
		}
		var wsum float64
		for _, w := range weights {
			wsum += w
		}
		if m.Regression {
			var s float64
			for a := range k {
				s += weights[a] * m.Y[idx[a]]
			}
			out[i] = s / wsum
			continue
		}
		o := out[i*m.Classes : (i+1)*m.Classes]
		clear(o)
		for a := range k {
			o[int(m.Y[idx[a]])] += weights[a] / wsum
		}
	}
}

// kmeans is Lloyd's k-means with k-means++ seeding (greedy, 2+ln k candidates per centre, as in
// scikit-learn), the best of n_init runs by inertia.
type kmeans struct {
	K       int       `json:"n_clusters"`
	NInit   int       `json:"n_init"`
	MaxIter int       `json:"max_iter"`
	Tol     float64   `json:"tol"`
	D       int       `json:"dims"`
	Centers []float64 `json:"centers"` // K×d
	Inertia float64   `json:"inertia"`
}

func (m *kmeans) fit(x *dense, _ []float64, _ int, seed uint64) error {
	if x.n < m.K {
		return fmt.Errorf("n_clusters is %d but there are only %d rows; lower n_clusters", m.K, x.n)
	}
	m.D = x.d
	// scikit-learn's tolerance is relative to the mean feature variance
	var varSum float64
	for j := 0; j < x.d; j++ {
		var s, ss float64
		for i := 0; i < x.n; i++ {
			s += x.v[i*x.d+j]
		}
		mu := s / float64(x.n)
		for i := 0; i < x.n; i++ {
			ss += sq(x.v[i*x.d+j] - mu)
		}
		varSum += ss / float64(x.n)
	}
	tol := m.Tol * varSum / float64(x.d)
	rng := rand.New(rand.NewPCG(seed, 0x6b6d65616e73))
	m.Inertia = math.Inf(1)
	for range m.NInit {
		c := kmeansPlusPlus(x, m.K, rng)
		inertia := lloyd(x, c, m.K, m.MaxIter, tol)
		if inertia < m.Inertia {
			m.Centers, m.Inertia = c, inertia
		}
	}
	return nil
}

func kmeansPlusPlus(x *dense, k int, rng *rand.Rand) []float64 {
	d := x.d
	centers := make([]float64, 0, k*d)
	centers = append(centers, x.row(rng.IntN(x.n))...)
	closest := make([]float64, x.n)
	for i := range closest {
		closest[i] = sqDist(x.row(i), centers[:d])
	}
	trials := 2 + int(math.Log(float64(k)))
	cand := make([]float64, x.n)
	for len(centers) < k*d {
		var pot float64
		for _, v := range closest {
			pot += v
		}
		bestPot, bestRow := math.Inf(1), -1
		var bestClosest []float64
		for range trials {
			r := rng.Float64() * pot
			row := x.n - 1
			for i, v := range closest {
				if r < v {
					row = i
					break
				}
				r -= v
			}
			var p float64
			for i := range cand {
				cand[i] = math.Min(closest[i], sqDist(x.row(i), x.row(row)))
				p += cand[i]
			}
			if p < bestPot {
				bestPot, bestRow = p, row
				bestClosest = append(bestClosest[:0], cand...)
			}
		}
		centers = append(centers, x.row(bestRow)...)
		copy(closest, bestClosest)
	}
	return centers
}

// lloyd refines centers in place and returns the final inertia.
func lloyd(x *dense, centers []float64, k, maxIter int, tol float64) float64 {
	d := x.d
	assign := make([]int, x.n)
	sums := make([]float64, k*d)
	counts := make([]int, k)
	for range maxIter {
		for i := 0; i < x.n; i++ {
			assign[i], _ = nearest(x.row(i), centers, k)
		}
		clear(sums)
		clear(counts)
		for i := 0; i < x.n; i++ {
			c := assign[i]
			counts[c]++
			for j, v := range x.row(i) {
				sums[c*d+j] += v
			}
		}
		var shift float64
		for c := range k {
			if counts[c] == 0 {
				continue // an empty cluster keeps its centre
			}
			for j := range d {
				nv := sums[c*d+j] / float64(counts[c])
				shift += sq(nv - centers[c*d+j])
				centers[c*d+j] = nv
			}
		}
		if shift <= tol {
			break
		}
	}
	var inertia float64
	for i := 0; i < x.n; i++ {
		_, dd := nearest(x.row(i), centers, k)
		inertia += dd
	}
	return inertia
}

func nearest(v, centers []float64, k int) (int, float64) {
	d := len(v)
	best, bestD := 0, math.Inf(1)
	for c := range k {
		if dd := sqDist(v, centers[c*d:(c+1)*d]); dd < bestD {
			best, bestD = c, dd
		}
	}
	return best, bestD
}

func (m *kmeans) predict(x *dense, out []float64) {
	for i := 0; i < x.n; i++ {
		c, _ := nearest(x.row(i), m.Centers, m.K)
		out[i] = float64(c)
	}
}

func sqDist(a, b []float64) float64 {
	var s float64
	for j, v := range a {
		dv := v - b[j]
		s += dv * dv
	}
	return s
}
