package search

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

// TPE is the Tree-structured Parzen Estimator with Optuna 3.1's defaults (independent,
// univariate): the first StartupTrials proposals are random; after that, for each active
// parameter the finished trials that have it are split by value into the best gamma(n) ("below")
// and the rest ("above"), a Parzen estimator (a weighted mixture of truncated Gaussians, or of
// smoothed categorical distributions, plus a prior component spanning the range) is fitted to
// each group, EICandidates values are drawn from the below estimator, and the one maximising
// l(x)/g(x) is proposed. A conditional parameter only learns from trials of its algorithm.
// PRUNED trials count as worse than every COMPLETE one (the more steps they ran, the better
// among themselves), as in Optuna.
type TPE struct {
	seed          uint64
	StartupTrials int     // default 10
	EICandidates  int     // default 24
	PriorWeight   float64 // default 1
}

// NewTPE returns a TPE sampler with Optuna's defaults.
func NewTPE(seed uint64) *TPE {
	return &TPE{seed: seed, StartupTrials: 10, EICandidates: 24, PriorWeight: 1}
}

// gamma is Optuna's default: the best 10%, at most 25 trials.
func gamma(n int) int { return min(int(math.Ceil(0.1*float64(n))), 25) }

// tpeWeights is Optuna's default_weights: equal weights for up to 25 observations, older ones
// ramped down beyond that (observations in trial order).
func tpeWeights(n int) []float64 {
	w := make([]float64, n)
	if n < 25 {
		for i := range w {
			w[i] = 1
		}
		return w
	}
	ramp := n - 25
	for i := range ramp {
		if ramp == 1 {
			w[i] = 1 / float64(n)
		} else {
			w[i] = 1/float64(n) + float64(i)*(1-1/float64(n))/float64(ramp-1)
		}
	}
	for i := ramp; i < n; i++ {
		w[i] = 1
	}
	return w
}

type observation struct {
	number int
	value  any
	rank   [3]float64 // (pruned?, -last step, loss): smaller is better
}

func (s *TPE) Sample(space *Space, trials []Trial) (map[string]any, error) {
	rng := trialRNG(s.seed, trials, 0x747065)
	finished := 0
	for _, t := range trials {
		if t.State == Complete || t.State == Pruned {
			finished++
		}
	}
	out := map[string]any{}
	for i := range space.Params {
		p := &space.Params[i]
		if !p.Active(out) {
			continue
		}
		if finished < s.StartupTrials {
			out[p.Name] = sampleUniform(p, rng)
			continue
		}
		out[p.Name] = s.sampleParam(p, trials, rng)
	}
	return out, nil
}

// sampleParam proposes one parameter from the finished trials. Samplers minimise; a
// maximising Study hands them trials with negated values.
func (s *TPE) sampleParam(p *Param, trials []Trial, rng *rand.Rand) any {
	var obs []observation
	for _, t := range trials {
		v, ok := t.Params[p.Name]
		if !ok || (t.State != Complete && t.State != Pruned) {
			continue
		}
		o := observation{number: t.Number, value: v}
		if t.State == Complete {
			o.rank = [3]float64{0, 0, t.Value}
		} else {
			step, last := t.lastStep()
			if math.IsNaN(last) {
				last = math.Inf(1)
			}
			o.rank = [3]float64{1, -float64(step), last}
		}
		if math.IsNaN(o.rank[2]) {
			o.rank[2] = math.Inf(1)
		}
		obs = append(obs, o)
	}
	if len(obs) == 0 {
		return sampleUniform(p, rng)
	}
	sorted := slices.Clone(obs)
	slices.SortStableFunc(sorted, func(a, b observation) int {
		for k := range 3 {
			if c := cmp.Compare(a.rank[k], b.rank[k]); c != 0 {
				return c
			}
		}
		return 0
	})
	nBelow := gamma(len(obs))
	below, above := sorted[:nBelow], sorted[nBelow:]
	byNumber := func(a, b observation) int { return a.number - b.number }
	below, above = slices.Clone(below), slices.Clone(above)
	slices.SortFunc(below, byNumber)
	slices.SortFunc(above, byNumber)

	if p.Kind == Categorical {
		l := s.categorical(p, below)
		g := s.categorical(p, above)
		best, bestScore := 0, math.Inf(-1)
		for range s.EICandidates {
			c := pickWeighted(l, rng)
			if score := math.Log(l[c]) - math.Log(g[c]); score > bestScore {
				best, bestScore = c, score
			}
		}
		return p.Choices[best]
	}
	lo, hi := p.Lo, p.Hi
	toX := func(v any) float64 {
		var f float64
		switch x := v.(type) {
		case int:
			f = float64(x)
		case float64:
			f = x
		}
		if p.Kind == LogFloat {
			return math.Log(f)
		}
		return f
	}
	switch p.Kind {
	case LogFloat:
		lo, hi = math.Log(lo), math.Log(hi)
	case Int:
		lo, hi = lo-0.5, hi+0.5
	}
	if lo == hi {
		return sampleUniform(p, rng)
	}
	l := s.parzen(below, toX, lo, hi)
	g := s.parzen(above, toX, lo, hi)
	bestX, bestScore := 0.0, math.Inf(-1)
	for range s.EICandidates {
		x := l.sample(rng)
		if p.Kind == Int {
			x = math.Min(math.Max(math.Round(x), p.Lo), p.Hi)
		}
		var score float64
		if p.Kind == Int {
			score = l.logMass(x-0.5, x+0.5) - g.logMass(x-0.5, x+0.5)
		} else {
			score = l.logPDF(x) - g.logPDF(x)
		}
		if score > bestScore {
			bestX, bestScore = x, score
		}
	}
	switch p.Kind {
	case Int:
		return int(bestX)
	case LogFloat:
		return math.Min(math.Max(math.Exp(bestX), p.Lo), p.Hi)
	}
	return bestX
}

// categorical returns the estimator's probability of each choice: a mixture with one kernel
// per observation (its choice gets weight 1, every choice prior/n_kernels) and a prior kernel.
func (s *TPE) categorical(p *Param, obs []observation) []float64 {
	k := len(p.Choices)
	probs := make([]float64, k)
	if len(obs) == 0 {
		for c := range probs {
			probs[c] = 1 / float64(k)
		}
		return probs
	}
	nKernels := float64(len(obs) + 1)
	w := append(tpeWeights(len(obs)), s.PriorWeight)
	var wsum float64
	for _, x := range w {
		wsum += x
	}
	base := s.PriorWeight / nKernels
	for i, o := range append(obs, observation{number: -1}) {
		kernel := make([]float64, k)
		for c := range kernel {
			kernel[c] = base
		}
		if i < len(obs) {
			kernel[slices.Index(p.Choices, o.value)]++
		}
		var ks float64
		for _, x := range kernel {
			ks += x
		}
		for c := range kernel {
			probs[c] += w[i] / wsum * kernel[c] / ks
		}
	}
	return probs
}

func pickWeighted(p []float64, rng *rand.Rand) int {
	r := rng.Float64()
	for i, x := range p {
		if r < x {
			return i
		}
		r -= x
	}
	return len(p) - 1
}

// parzenEstimator is a weighted mixture of Gaussians truncated to [lo, hi].
type parzenEstimator struct {
	mus, sigmas, weights []float64
	lo, hi               float64
	logNorm              []float64 // log of each component's mass inside [lo, hi]
}

// parzen fits the estimator as Optuna 3.1 does: one component per observation and a prior
// component (mean the middle, sigma the width); each observation's sigma is the larger gap to
// its sorted neighbours (the outermost use their inner gap only), clipped to
// [(hi-lo)/min(100, 1+n), hi-lo] ("magic clip").
func (s *TPE) parzen(obs []observation, toX func(any) float64, lo, hi float64) *parzenEstimator {
	n := len(obs)
	mus := make([]float64, 0, n+1)
	for _, o := range obs {
		mus = append(mus, toX(o.value))
	}
	mus = append(mus, (lo+hi)/2) // the prior
	sigmas := make([]float64, n+1)
	if n > 0 {
		idx := make([]int, n+1)
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(mus[a], mus[b]) })
		ext := make([]float64, 0, n+3)
		ext = append(ext, lo)
		for _, i := range idx {
			ext = append(ext, mus[i])
		}
		ext = append(ext, hi)
		sorted := make([]float64, n+1)
		for j := range sorted {
			sorted[j] = math.Max(ext[j+1]-ext[j], ext[j+2]-ext[j+1])
		}
		if len(ext) >= 4 {
			sorted[0] = ext[2] - ext[1]
			sorted[n] = ext[n+1] - ext[n]
		}
		for j, i := range idx {
			sigmas[i] = sorted[j]
		}
		minSigma := (hi - lo) / math.Min(100, 1+float64(n+1))
		for i := range sigmas {
			sigmas[i] = math.Min(math.Max(sigmas[i], minSigma), hi-lo)
		}
	}
	sigmas[n] = hi - lo
	w := append(tpeWeights(n), s.PriorWeight)
	var wsum float64
	for _, x := range w {
		wsum += x
	}
	for i := range w {
		w[i] /= wsum
	}
	pe := &parzenEstimator{mus: mus, sigmas: sigmas, weights: w, lo: lo, hi: hi, logNorm: make([]float64, n+1)}
	for i := range mus {
		pe.logNorm[i] = math.Log(math.Max(normCDF((hi-mus[i])/sigmas[i])-normCDF((lo-mus[i])/sigmas[i]), 1e-300))
	}
	return pe
}

func (pe *parzenEstimator) sample(rng *rand.Rand) float64 {
	i := pickWeighted(pe.weights, rng)
	mu, sigma := pe.mus[i], pe.sigmas[i]
	// inverse CDF of the truncated normal
	a, b := normCDF((pe.lo-mu)/sigma), normCDF((pe.hi-mu)/sigma)
	u := a + rng.Float64()*(b-a)
	x := mu + sigma*math.Sqrt2*math.Erfinv(2*u-1)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		x = pe.lo + rng.Float64()*(pe.hi-pe.lo)
	}
	return math.Min(math.Max(x, pe.lo), pe.hi)
}

func (pe *parzenEstimator) logPDF(x float64) float64 {
	terms := make([]float64, len(pe.mus))
	for i, mu := range pe.mus {
		z := (x - mu) / pe.sigmas[i]
		terms[i] = math.Log(pe.weights[i]) - 0.5*z*z - math.Log(pe.sigmas[i]*math.Sqrt(2*math.Pi)) - pe.logNorm[i]
	}
	return logSumExp(terms)
}

// logMass is the log probability of [a, b] (an integer's bin).
func (pe *parzenEstimator) logMass(a, b float64) float64 {
	var p float64
	for i, mu := range pe.mus {
		s := pe.sigmas[i]
		p += pe.weights[i] * (normCDF((b-mu)/s) - normCDF((a-mu)/s)) / math.Exp(pe.logNorm[i])
	}
	return math.Log(math.Max(p, 1e-300))
}

func normCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

func logSumExp(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	if math.IsInf(m, -1) {
		return m
	}
	var s float64
	for _, x := range v {
		s += math.Exp(x - m)
	}
	return m + math.Log(s)
}
