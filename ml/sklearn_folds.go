package ml

import "slices"

// This file deals cross-validation folds exactly as scikit-learn does, numpy's legacy random
// generator included, so that a score can be compared with scikit-learn's fold for fold rather
// than only in distribution: with the same folds a deterministic model (logistic regression,
// naive Bayes, k-NN) must reproduce scikit-learn's figure to the last digit, which separates
// "our model differs" from "our folds differ" when a comparison misses.

// mt19937 is numpy's legacy RandomState generator (Mersenne Twister, init_genrand seeding).
type mt19937 struct {
	mt  [624]uint32
	idx int
}

func newMT19937(seed uint32) *mt19937 {
	g := &mt19937{idx: 624}
	g.mt[0] = seed
	for i := 1; i < 624; i++ {
		g.mt[i] = 1812433253*(g.mt[i-1]^(g.mt[i-1]>>30)) + uint32(i)
	}
	return g
}

func (g *mt19937) uint32() uint32 {
	if g.idx >= 624 {
		for i := range 624 {
			y := (g.mt[i] & 0x80000000) | (g.mt[(i+1)%624] & 0x7fffffff)
			v := g.mt[(i+397)%624] ^ (y >> 1)
			if y&1 != 0 {
				v ^= 0x9908b0df
			}
			g.mt[i] = v
		}
		g.idx = 0
	}
	y := g.mt[g.idx]
	g.idx++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// interval is numpy's random_interval: uniform in [0, max] by masked rejection.
func (g *mt19937) interval(max uint32) uint32 {
	if max == 0 {
		return 0
	}
	mask := max
	mask |= mask >> 1
	mask |= mask >> 2
	mask |= mask >> 4
	mask |= mask >> 8
	mask |= mask >> 16
	for {
		if v := g.uint32() & mask; v <= max {
			return v
		}
	}
}

// shuffle is RandomState.shuffle of a 1-d array.
func (g *mt19937) shuffle(x []int) {
	for i := len(x) - 1; i >= 1; i-- {
		j := g.interval(uint32(i))
		x[i], x[j] = x[j], x[i]
	}
}

// sklearnFolds returns scikit-learn's test fold of each row for StratifiedKFold (stratified)
// or KFold, shuffled with random_state=seed when shuffle is set.
func sklearnFolds(n int, y []float64, k int, stratified, shuffle bool, seed uint32) []int {
	var rng *mt19937
	if shuffle {
		rng = newMT19937(seed)
	}
	folds := make([]int, n)
	if !stratified {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		if shuffle {
			rng.shuffle(idx)
		}
		pos := 0
		for f := range k {
			size := n / k
			if f < n%k {
				size++
			}
			for _, r := range idx[pos : pos+size] {
				folds[r] = f
			}
			pos += size
		}
		return folds
	}
	// classes numbered by first appearance, as StratifiedKFold encodes them
	enc := map[int]int{}
	code := make([]int, n)
	for i, v := range y {
		c, ok := enc[int(v)]
		if !ok {
			c = len(enc)
			enc[int(v)] = c
		}
		code[i] = c
	}
	nc := len(enc)
	sorted := slices.Clone(code)
	slices.Sort(sorted)
	// alloc[f][c]: rows of class c in fold f, from the class-sorted labels dealt k ways
	alloc := make([][]int, k)
	for f := range k {
		alloc[f] = make([]int, nc)
		for i := f; i < n; i += k {
			alloc[f][sorted[i]]++
		}
	}
	for c := range nc {
		var forClass []int
		for f := range k {
			for range alloc[f][c] {
				forClass = append(forClass, f)
			}
		}
		if shuffle {
			rng.shuffle(forClass)
		}
		next := 0
		for i := range n {
			if code[i] == c {
				folds[i] = forClass[next]
				next++
			}
		}
	}
	return folds
}
