package ml

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
)

// tree is a fitted binary decision tree, shared by decision_tree, random_forest and gbdt.
// Node i is a leaf when Feature[i] < 0; then Left[i] is the offset of its Outs values in Value.
// Otherwise rows with x[Feature[i]] <= Threshold[i] go to Left[i], the rest to Right[i]. Only
// leaves keep values, which keeps a 100-tree forest small in the model file.
type tree struct {
	Outs      int       `json:"outs"`
	Feature   []int32   `json:"feature"`
	Threshold []float64 `json:"threshold"`
	Left      []int32   `json:"left"`
	Right     []int32   `json:"right"`
	Value     []float64 `json:"value"`

	nodes   []treeNode
	valueAt []int32 // per packed node: offset of a leaf's values in Value
	depth   int
}

// treeNode is the packed form prediction walks: 16 bytes, children side by side (left at
// left, right at left+1), so four nodes share a cache line and choosing a child is an add, not
// a branch between two loads. A leaf points to itself with threshold +Inf (no value goes
// right of it, NaN included), so a walk of depth() steps ends on the leaf whatever its depth,
// with no test for "is this a leaf" on the way. The nodes are rebuilt from the exported slices
// after fitting and after loading.
type treeNode struct {
	threshold float64
	feature   int32
	left      int32
}

// compile lays the nodes out breadth first, which puts every node's two children next to
// each other, and records each leaf's value offset and the tree's depth.
func (t *tree) compile() {
	t.nodes = make([]treeNode, 0, len(t.Feature))
	t.valueAt = make([]int32, 0, len(t.Feature))
	order := []int32{0}
	depth := []int{0}
	t.depth = 0
	for head := 0; head < len(order); head++ {
		old := order[head]
		t.depth = max(t.depth, depth[head])
		if t.Feature[old] < 0 {
			t.nodes = append(t.nodes, treeNode{threshold: math.Inf(1), left: int32(head)})
			t.valueAt = append(t.valueAt, t.Left[old])
			continue
		}
		t.nodes = append(t.nodes, treeNode{threshold: t.Threshold[old], feature: t.Feature[old], left: int32(len(order))})
		t.valueAt = append(t.valueAt, -1)
		order = append(order, t.Left[old], t.Right[old])
		depth = append(depth, depth[head]+1, depth[head]+1)
	}
}

// leaf returns the values of the leaf row x falls into.
func (t *tree) leaf(x []float64) []float64 {
	nodes := t.nodes
	n := int32(0)
	for range t.depth {
		nd := &nodes[n]
		n = nd.left
		if x[nd.feature] > nd.threshold {
			n++
		}
	}
	v := t.valueAt[n]
	return t.Value[v : int(v)+t.Outs]
}

// leafOffsets sets off[j] to the Value offset of the leaf that row i0+j of x falls into. The
// rows walk down together, one level per pass, so the loads of different rows are independent
// and overlap in the CPU instead of each row waiting on its own chain of cache misses.
func (t *tree) leafOffsets(x *dense, i0 int, off []int32) {
	nodes := t.nodes
	d := x.d
	clear(off)
	for range t.depth {
		for j, n := range off {
			nd := &nodes[n]
			next := nd.left
			if x.v[(i0+j)*d+int(nd.feature)] > nd.threshold {
				next++
			}
			off[j] = next
		}
	}
	for j, n := range off {
		off[j] = t.valueAt[n]
	}
}

func (t *tree) UnmarshalJSON(b []byte) error {
	type plain tree
	if err := json.Unmarshal(b, (*plain)(t)); err != nil {
		return err
	}
	t.compile()
	return nil
}

func (t *tree) addLeaf(values []float64) int32 {
	id := int32(len(t.Feature))
	t.Feature = append(t.Feature, -1)
	t.Threshold = append(t.Threshold, 0)
	t.Left = append(t.Left, int32(len(t.Value)))
	t.Right = append(t.Right, -1)
	t.Value = append(t.Value, values...)
	return id
}

func (t *tree) addSplit(feature int, threshold float64) int32 {
	id := int32(len(t.Feature))
	t.Feature = append(t.Feature, int32(feature))
	t.Threshold = append(t.Threshold, threshold)
	t.Left = append(t.Left, -1)
	t.Right = append(t.Right, -1)
	return id
}

// treeConfig holds the CART growth limits, named as in scikit-learn.
type treeConfig struct {
	MaxDepth    int    `json:"max_depth"` // 0: unlimited
	MinSplit    int    `json:"min_samples_split"`
	MinLeaf     int    `json:"min_samples_leaf"`
	MaxFeatures string `json:"max_features"` // all, sqrt, log2
	Regression  bool   `json:"regression"`
}

func treeConfigFrom(h hparams, task Task) treeConfig {
	return treeConfig{MaxDepth: h.int("max_depth"), MinSplit: h.int("min_samples_split"), MinLeaf: h.int("min_samples_leaf"),
		MaxFeatures: h.str("max_features"), Regression: task == Regression}
}

func (c treeConfig) featuresPerSplit(d int) int {
	switch c.MaxFeatures {
	case "sqrt":
		return max(1, int(math.Sqrt(float64(d))))
	case "log2":
		return max(1, int(math.Log2(float64(d))))
	}
	return d
}

// columns is the training matrix column-major, the layout split search reads.
func columns(x *dense) [][]float64 {
	cols := make([][]float64, x.d)
	for j := range cols {
		cols[j] = make([]float64, x.n)
		for i := range x.n {
			cols[j][i] = x.v[i*x.d+j]
		}
	}
	return cols
}

// cartBuilder grows one CART tree: gini for classification, squared error for regression,
// depth first, trying features in a random order and keeping the first best split, as
// scikit-learn's BestSplitter does (so equal splits are broken by the seed, not by column
// order). rows may repeat (a bootstrap sample), which weights them.
type cartBuilder struct {
	cfg    treeConfig
	cols   [][]float64
	y      []float64
	k      int // classes; 0 for regression
	mtry   int
	rng    *rand.Rand
	t      *tree
	pairs  []pair
	counts []float64 // scratch class counts: left then total
	feats  []int
}

type pair struct {
	v float64
	y float64
}

func buildCART(cols [][]float64, y []float64, rows []int, k int, cfg treeConfig, rng *rand.Rand) *tree {
	outs := max(k, 1)
	b := &cartBuilder{cfg: cfg, cols: cols, y: y, k: k, mtry: cfg.featuresPerSplit(len(cols)), rng: rng,
		t: &tree{Outs: outs}, pairs: make([]pair, len(rows)), counts: make([]float64, 2*outs), feats: make([]int, len(cols))}
	b.grow(rows, 0)
	b.t.compile()
	return b.t
}

// grow adds the subtree for rows and returns its node id.
func (b *cartBuilder) grow(rows []int, depth int) int32 {
	n := len(rows)
	value, pure := b.leafValue(rows)
	if pure || n < b.cfg.MinSplit || n < 2*b.cfg.MinLeaf || (b.cfg.MaxDepth > 0 && depth >= b.cfg.MaxDepth) {
		return b.t.addLeaf(value)
	}
	feature, threshold, ok := b.bestSplit(rows)
	if !ok {
		return b.t.addLeaf(value)
	}
	col := b.cols[feature]
	i, j := 0, n-1
	for i <= j { // partition: rows going left first
		if col[rows[i]] <= threshold {
			i++
		} else {
			rows[i], rows[j] = rows[j], rows[i]
			j--
		}
	}
	id := b.t.addSplit(feature, threshold)
	l := b.grow(rows[:i], depth+1)
	r := b.grow(rows[i:], depth+1)
	b.t.Left[id], b.t.Right[id] = l, r
	return id
}

func (b *cartBuilder) leafValue(rows []int) ([]float64, bool) {
	if b.k == 0 {
		var s, ss float64
		for _, r := range rows {
			s += b.y[r]
		}
		m := s / float64(len(rows))
		for _, r := range rows {
			ss += sq(b.y[r] - m)
		}
		return []float64{m}, ss <= 1e-12*float64(len(rows))
	}
	v := make([]float64, b.k)
	for _, r := range rows {
		v[int(b.y[r])]++
	}
	nonzero := 0
	for c := range v {
		if v[c] > 0 {
			nonzero++
		}
		v[c] /= float64(len(rows))
	}
	return v, nonzero <= 1
}

// bestSplit searches the node's rows for the split with the largest impurity decrease.
// The proxy maximised is Σ_c L_c²/n_L + Σ_c R_c²/n_R (gini) or S_L²/n_L + S_R²/n_R (squared
// error), which orders splits as the impurity decrease does.
func (b *cartBuilder) bestSplit(rows []int) (int, float64, bool) {
	d := len(b.cols)
	for j := range b.feats {
		b.feats[j] = j
	}
	best := math.Inf(-1)
	bestF, bestT := -1, 0.0
	n := len(rows)
	pairs := b.pairs[:n]
	minLeaf := b.cfg.MinLeaf
	visited := 0
	for drawn := 0; drawn < d && visited < b.mtry; drawn++ {
		// draw the next feature without replacement
		p := drawn + b.rng.IntN(d-drawn)
		b.feats[drawn], b.feats[p] = b.feats[p], b.feats[drawn]
		f := b.feats[drawn]
		col := b.cols[f]
		for i, r := range rows {
			pairs[i] = pair{col[r], b.y[r]}
		}
		// features are imputed, so there is no NaN: a plain comparison (cmp.Compare's NaN
		// handling cost a third of forest fit time)
		slices.SortFunc(pairs, func(a, c pair) int {
			if a.v < c.v {
				return -1
			}
			if a.v > c.v {
				return 1
			}
			return 0
		})
		if pairs[0].v == pairs[n-1].v {
			continue // constant in this node: does not count towards max_features
		}
		visited++
		if b.k == 0 {
			var total float64
			for _, p := range pairs {
				total += p.y
			}
			var sl float64
			for i := 0; i < n-1; i++ {
				sl += pairs[i].y
				nl := i + 1
				if pairs[i].v == pairs[i+1].v || nl < minLeaf || n-nl < minLeaf {
					continue
				}
				sr := total - sl
				if proxy := sl*sl/float64(nl) + sr*sr/float64(n-nl); proxy > best {
					best, bestF, bestT = proxy, f, midpoint(pairs[i].v, pairs[i+1].v)
				}
			}
			continue
		}
		left, total := b.counts[:b.k], b.counts[b.k:]
		clear(left)
		clear(total)
		for _, p := range pairs {
			total[int(p.y)]++
		}
		var sqL, sqR float64
		for _, c := range total {
			sqR += c * c
		}
		for i := 0; i < n-1; i++ {
			c := int(pairs[i].y)
			sqL += 2*left[c] + 1
			sqR -= 2*(total[c]-left[c]) - 1
			left[c]++
			nl := i + 1
			if pairs[i].v == pairs[i+1].v || nl < minLeaf || n-nl < minLeaf {
				continue
			}
			if proxy := sqL/float64(nl) + sqR/float64(n-nl); proxy > best {
				best, bestF, bestT = proxy, f, midpoint(pairs[i].v, pairs[i+1].v)
			}
		}
	}
	return bestF, bestT, bestF >= 0
}

// midpoint is the threshold between two adjacent distinct values; when they are so close that
// the midpoint rounds up to b, a is used, so a still goes left and b right.
func midpoint(a, b float64) float64 {
	m := a/2 + b/2
	if m >= b || m < a {
		return a
	}
	return m
}

// decisionTree is a single CART tree (decision_tree).
type decisionTree struct {
	cfg  treeConfig
	Tree *tree `json:"tree"`
}

func (m *decisionTree) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Config treeConfig `json:"config"`
		Tree   *tree      `json:"tree"`
	}{m.cfg, m.Tree})
}

func (m *decisionTree) UnmarshalJSON(b []byte) error {
	var v struct {
		Config treeConfig `json:"config"`
		Tree   *tree      `json:"tree"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	m.cfg, m.Tree = v.Config, v.Tree
	return nil
}

func (m *decisionTree) fit(x *dense, y []float64, k int, seed uint64) error {
	rows := make([]int, x.n)
	for i := range rows {
		rows[i] = i
	}
	m.Tree = buildCART(columns(x), y, rows, k, m.cfg, rand.New(rand.NewPCG(seed, 0x74726565)))
	return nil
}

func (m *decisionTree) predict(x *dense, out []float64) {
	outs := m.Tree.Outs
	for i := 0; i < x.n; i++ {
		copy(out[i*outs:(i+1)*outs], m.Tree.leaf(x.row(i)))
	}
}
