package ml

import (
	"encoding/json"
	"math/rand/v2"
	"runtime"
	"sync"
)

// randomForest averages CART trees grown on bootstrap samples with max_features features tried
// per split. Trees are grown on all cores; tree i draws from its own generator seeded by
// (seed, i), so the forest is the same whatever the number of cores or the order trees finish.
type randomForest struct {
	NTrees    int
	Bootstrap bool
	cfg       treeConfig
	Trees     []*tree
}

type forestJSON struct {
	NTrees    int        `json:"n_estimators"`
	Bootstrap bool       `json:"bootstrap"`
	Config    treeConfig `json:"config"`
	Trees     []*tree    `json:"trees"`
}

func (m *randomForest) MarshalJSON() ([]byte, error) {
	return json.Marshal(forestJSON{m.NTrees, m.Bootstrap, m.cfg, m.Trees})
}

func (m *randomForest) UnmarshalJSON(b []byte) error {
	var v forestJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	m.NTrees, m.Bootstrap, m.cfg, m.Trees = v.NTrees, v.Bootstrap, v.Config, v.Trees
	return nil
}

func (m *randomForest) fit(x *dense, y []float64, k int, seed uint64) error {
	cols := columns(x)
	m.Trees = make([]*tree, m.NTrees)
	parallelFor(m.NTrees, func(i int) {
		rng := rand.New(rand.NewPCG(seed, uint64(i)+1))
		rows := make([]int, x.n)
		for r := range rows {
			if m.Bootstrap {
				rows[r] = rng.IntN(x.n)
			} else {
				rows[r] = r
			}
		}
		m.Trees[i] = buildCART(cols, y, rows, k, m.cfg, rng)
	})
	return nil
}

// predictBlock is the number of rows predicted together: each tree walks a block of rows
// before the next tree is touched, so a tree's nodes stay in cache across the block instead of
// every tree being streamed through the cache for every row.
const predictBlock = 256

func (m *randomForest) predict(x *dense, out []float64) {
	outs := m.Trees[0].Outs
	inv := 1 / float64(len(m.Trees))
	clear(out[:x.n*outs])
	off := make([]int32, predictBlock)
	for b0 := 0; b0 < x.n; b0 += predictBlock {
		b1 := min(b0+predictBlock, x.n)
		for _, t := range m.Trees {
			o := off[:b1-b0]
			t.leafOffsets(x, b0, o)
			for j, v := range o {
				dst := out[(b0+j)*outs : (b0+j+1)*outs]
				for c, lv := range t.Value[v : int(v)+outs] {
					dst[c] += lv
				}
			}
		}
		for i := b0 * outs; i < b1*outs; i++ {
			out[i] *= inv
		}
	}
}

// parallelFor runs fn(0..n-1) on GOMAXPROCS goroutines and waits. fn must only write state
// owned by its index.
func parallelFor(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
