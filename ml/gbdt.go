package ml

import (
	"encoding/json"
	"math"
	"slices"
)

// gbdt is histogram-based gradient boosting like scikit-learn's HistGradientBoosting: features
// binned once into at most max_bins quantile bins, trees grown leaf-wise (best gain first) up to
// max_leaf_nodes from gradient/hessian histograms, with the smaller child's histogram built and
// the larger one's taken by subtraction. Losses: squared error (regression), binary log loss,
// softmax cross-entropy with one tree per class per iteration (multiclass); the class trees of
// an iteration are independent given the gradients and grow in parallel. Trees split on real
// thresholds (bin upper edges), so prediction needs no binning.
type gbdt struct {
	cfg      gbdtConfig
	Outs     int
	Baseline []float64
	Trees    []*tree // iteration-major: Trees[it*Outs+c]
	K        int
}

type gbdtConfig struct {
	Iter      int     `json:"max_iter"`
	Rate      float64 `json:"learning_rate"`
	MaxLeaves int     `json:"max_leaf_nodes"`
	MaxDepth  int     `json:"max_depth"`
	MinLeaf   int     `json:"min_samples_leaf"`
	L2        float64 `json:"l2_regularization"`
	MaxBins   int     `json:"max_bins"`
}

type gbdtJSON struct {
	Config   gbdtConfig `json:"config"`
	Classes  int        `json:"classes"`
	Outs     int        `json:"outs"`
	Baseline []float64  `json:"baseline"`
	Trees    []*tree    `json:"trees"`
}

func (m *gbdt) MarshalJSON() ([]byte, error) {
	return json.Marshal(gbdtJSON{m.cfg, m.K, m.Outs, m.Baseline, m.Trees})
}

func (m *gbdt) UnmarshalJSON(b []byte) error {
	var v gbdtJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	m.cfg, m.K, m.Outs, m.Baseline, m.Trees = v.Config, v.Classes, v.Outs, v.Baseline, v.Trees
	return nil
}

// Minimum hessian sum of a child, scikit-learn's min_hessian_to_split.
const minHessian = 1e-3

// binThresholds returns the upper edges of a column's bins: midpoints between distinct values
// when there are at most maxBins of them, otherwise midpoint percentiles, as scikit-learn does.
func binThresholds(col []float64, maxBins int) []float64 {
	s := slices.Clone(col)
	slices.Sort(s)
	distinct := slices.Compact(slices.Clone(s))
	if len(distinct) <= maxBins {
		t := make([]float64, 0, len(distinct)-1)
		for i := 0; i+1 < len(distinct); i++ {
			t = append(t, midpoint(distinct[i], distinct[i+1]))
		}
		return t
	}
	t := make([]float64, 0, maxBins-1)
	n := float64(len(s) - 1)
	for i := 1; i < maxBins; i++ {
		pos := float64(i) / float64(maxBins) * n
		lo, hi := math.Floor(pos), math.Ceil(pos)
		t = append(t, (s[int(lo)]+s[int(hi)])/2)
	}
	return slices.Compact(t)
}

type histBin struct {
	g, h float64
	n    int32
}

type gbSplit struct {
	gain   float64
	feat   int
	bin    int
	gl, hl float64
	nl     int
}

type gbLeaf struct {
	id     int32
	rows   []int32
	hist   []histBin
	g, h   float64
	depth  int
	split  gbSplit
	canSpl bool
}

// gbGrower grows trees on fixed binned data.
type gbGrower struct {
	cfg    gbdtConfig
	bins   [][]uint8 // per feature, per row
	thr    [][]float64
	offset []int // start of each feature in a histogram
	width  int
	pools  [][][]histBin // per output: histograms free for reuse (allocation dominated fit time)
	// parallelHist builds histograms on all cores; set when there is one output, so the
	// trees of an iteration are not already using them.
	parallelHist bool
}

func (m *gbdt) fit(x *dense, y []float64, k int, _ uint64) error {
	m.K = k
	n := x.n
	cols := columns(x)
	gr := &gbGrower{cfg: m.cfg, bins: make([][]uint8, x.d), thr: make([][]float64, x.d), offset: make([]int, x.d)}
	parallelFor(len(cols), func(j int) { // binning sorts every column: one column per task
		t := binThresholds(cols[j], m.cfg.MaxBins)
		b := make([]uint8, n)
		for i, v := range cols[j] {
			b[i] = uint8(sortSearch(t, v))
		}
		gr.thr[j], gr.bins[j] = t, b
	})
	for j := range cols {
		gr.offset[j] = gr.width
		gr.width += len(gr.thr[j]) + 1
	}
	outs := 1
	if k > 2 {
		outs = k
	}
	m.Outs = outs
	gr.pools = make([][][]histBin, outs)
	gr.parallelHist = outs == 1
	m.Baseline = make([]float64, outs)
	switch {
	case k == 0:
		m.Baseline[0] = mean(y)
	case k == 2:
		p := math.Min(math.Max(mean(y), 1e-15), 1-1e-15)
		m.Baseline[0] = math.Log(p / (1 - p))
	default:
		for _, v := range y {
			m.Baseline[int(v)]++
		}
		for c := range m.Baseline {
			m.Baseline[c] = math.Log(math.Max(m.Baseline[c]/float64(n), 1e-15))
		}
	}
	raw := make([]float64, n*outs)
	for i := range n {
		copy(raw[i*outs:], m.Baseline)
	}
	grad := make([][]float64, outs)
	hess := make([][]float64, outs)
	for c := range outs {
		grad[c], hess[c] = make([]float64, n), make([]float64, n)
	}
	prob := make([]float64, outs)
	m.Trees = make([]*tree, 0, m.cfg.Iter*outs)
	for range m.cfg.Iter {
		for i := range n {
			r := raw[i*outs : (i+1)*outs]
			switch {
			case k == 0:
				grad[0][i], hess[0][i] = r[0]-y[i], 1
			case k == 2:
				p := sigmoid(r[0])
				grad[0][i], hess[0][i] = p-y[i], p*(1-p)
			default:
				copy(prob, r)
				softmaxInPlace(prob)
				for c := range outs {
					t := 0.0
					if int(y[i]) == c {
						t = 1
					}
					grad[c][i], hess[c][i] = prob[c]-t, prob[c]*(1-prob[c])
				}
			}
		}
		trees := make([]*tree, outs)
		parallelFor(outs, func(c int) {
			var leaves []*gbLeaf
			trees[c], leaves = gr.grow(c, grad[c], hess[c])
			// The leaves know their rows: no need to walk the new tree for every row.
			// Bin b ≤ split bin is exactly x ≤ threshold, so this is what predict computes.
			for _, l := range leaves {
				v := t0(trees[c], l.id)
				for _, r := range l.rows {
					raw[int(r)*outs+c] += v
				}
			}
		})
		m.Trees = append(m.Trees, trees...)
	}
	return nil
}

// sortSearch returns the first index b with v <= t[b] (len(t) when none): the bin of v.
func sortSearch(t []float64, v float64) int {
	lo, hi := 0, len(t)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if v <= t[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

func (gr *gbGrower) leafValue(g, h float64) float64 {
	return -gr.cfg.Rate * g / (h + gr.cfg.L2)
}

// t0 is the first value of leaf node id (in the unpacked numbering).
func t0(t *tree, id int32) float64 { return t.Value[t.Left[id]] }

// grow fits one tree to the gradients of output c (one goroutine per output at a time) and
// returns it with its leaves, whose rows partition the training rows.
func (gr *gbGrower) grow(c int, grad, hess []float64) (*tree, []*gbLeaf) {
	n := len(grad)
	t := &tree{Outs: 1}
	rows := make([]int32, n)
	var g, h float64
	for i := range rows {
		rows[i] = int32(i)
		g += grad[i]
		h += hess[i]
	}
	pool := &gr.pools[c]
	root := &gbLeaf{rows: rows, g: g, h: h, hist: gr.histogram(pool, rows, grad, hess)}
	root.id = t.addLeaf([]float64{gr.leafValue(g, h)})
	gr.findSplit(root)
	open := []*gbLeaf{root}
	leaves := 1
	for leaves < gr.cfg.MaxLeaves {
		bi := -1
		for i, l := range open {
			if l.canSpl && (bi < 0 || l.split.gain > open[bi].split.gain) {
				bi = i
			}
		}
		if bi < 0 {
			break
		}
		p := open[bi]
		open = slices.Delete(open, bi, bi+1)
		s := p.split
		b := gr.bins[s.feat]
		i, j := 0, len(p.rows)-1
		for i <= j {
			if int(b[p.rows[i]]) <= s.bin {
				i++
			} else {
				p.rows[i], p.rows[j] = p.rows[j], p.rows[i]
				j--
			}
		}
		left := &gbLeaf{rows: p.rows[:i], g: s.gl, h: s.hl, depth: p.depth + 1}
		right := &gbLeaf{rows: p.rows[i:], g: p.g - s.gl, h: p.h - s.hl, depth: p.depth + 1}
		small, large := left, right
		if len(right.rows) < len(left.rows) {
			small, large = right, left
		}
		small.hist = gr.histogram(pool, small.rows, grad, hess)
		large.hist = p.hist // reuse the parent's memory: large = parent - small
		for q := range large.hist {
			large.hist[q].g -= small.hist[q].g
			large.hist[q].h -= small.hist[q].h
			large.hist[q].n -= small.hist[q].n
		}
		left.id = t.addLeaf([]float64{gr.leafValue(left.g, left.h)})
		right.id = t.addLeaf([]float64{gr.leafValue(right.g, right.h)})
		t.Feature[p.id] = int32(s.feat)
		t.Threshold[p.id] = gr.thr[s.feat][s.bin]
		t.Left[p.id], t.Right[p.id] = left.id, right.id
		leaves++
		for _, c := range []*gbLeaf{left, right} {
			if gr.cfg.MaxDepth == 0 || c.depth < gr.cfg.MaxDepth {
				gr.findSplit(c)
			}
			open = append(open, c)
		}
	}
	for _, l := range open {
		*pool = append(*pool, l.hist)
		l.hist = nil
	}
	t.compile()
	return t, open
}

func (gr *gbGrower) histogram(pool *[][]histBin, rows []int32, grad, hess []float64) []histBin {
	var hist []histBin
	if n := len(*pool); n > 0 {
		hist = (*pool)[n-1]
		*pool = (*pool)[:n-1]
		clear(hist)
	} else {
		hist = make([]histBin, gr.width)
	}
	fill := func(f int) {
		hf := hist[gr.offset[f]:]
		b := gr.bins[f]
		for _, r := range rows {
			e := &hf[b[r]]
			e.g += grad[r]
			e.h += hess[r]
			e.n++
		}
	}
	// With one tree per iteration (regression, binary) the trees cannot run in parallel, so a
	// large node's histogram is built on all cores instead, one feature per task: each
	// feature's bins are summed by one goroutine in row order, so the sums (and the model)
	// do not depend on the number of cores.
	if gr.parallelHist && len(rows)*len(gr.bins) >= 1<<15 {
		parallelFor(len(gr.bins), fill)
		return hist
	}
	for f := range gr.bins {
		fill(f)
	}
	return hist
}

// findSplit scans every feature's histogram for the split with the largest gain
// G_L²/(H_L+λ) + G_R²/(H_R+λ) - G²/(H+λ), subject to min_samples_leaf and min hessian.
func (gr *gbGrower) findSplit(l *gbLeaf) {
	n := len(l.rows)
	minLeaf := gr.cfg.MinLeaf
	if n < 2*minLeaf {
		return
	}
	lam := gr.cfg.L2
	parent := l.g * l.g / (l.h + lam)
	best := gbSplit{gain: 0}
	for f := range gr.bins {
		nb := len(gr.thr[f]) + 1
		hf := l.hist[gr.offset[f] : gr.offset[f]+nb]
		var gl, hl float64
		nl := 0
		for b := 0; b < nb-1; b++ {
			gl += hf[b].g
			hl += hf[b].h
			nl += int(hf[b].n)
			if nl < minLeaf {
				continue
			}
			if n-nl < minLeaf {
				break
			}
			hr := l.h - hl
			if hl < minHessian || hr < minHessian {
				continue
			}
			gr_ := l.g - gl
			gain := gl*gl/(hl+lam) + gr_*gr_/(hr+lam) - parent
			if gain > best.gain {
				best = gbSplit{gain: gain, feat: f, bin: b, gl: gl, hl: hl, nl: nl}
			}
		}
	}
	if best.gain > 0 {
		l.split, l.canSpl = best, true
	}
}

func (m *gbdt) predict(x *dense, out []float64) {
	outs := m.Outs
	raw := make([]float64, predictBlock*outs)
	off := make([]int32, predictBlock)
	for b0 := 0; b0 < x.n; b0 += predictBlock {
		b1 := min(b0+predictBlock, x.n)
		for i := b0; i < b1; i++ {
			copy(raw[(i-b0)*outs:], m.Baseline)
		}
		for t, tr := range m.Trees { // tree by tree over the block: see predictBlock
			c := t % outs
			o := off[:b1-b0]
			tr.leafOffsets(x, b0, o)
			for j, v := range o {
				raw[j*outs+c] += tr.Value[v]
			}
		}
		for i := b0; i < b1; i++ {
			r := raw[(i-b0)*outs : (i-b0+1)*outs]
			switch {
			case m.K == 0:
				out[i] = r[0]
			case m.K == 2:
				p := sigmoid(r[0])
				out[2*i], out[2*i+1] = 1-p, p
			default:
				o := out[i*outs : (i+1)*outs]
				copy(o, r)
				softmaxInPlace(o)
			}
		}
	}
}
