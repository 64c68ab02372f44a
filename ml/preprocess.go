package ml

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Scalers and imputers by their SQL names.
var (
	scalers  = []string{"none", "standard", "minmax"}
	imputers = []string{"mean", "median", "most_frequent"}
)

// columnPrep is the fitted preprocessing of one input column. A numeric column becomes one
// output column: NULL replaced by Fill, then (x - Center) / Scale. A string column becomes one
// output column per training category (one-hot); NULL is replaced by FillStr first, and a
// category unseen in training becomes all zeros, because refusing to predict for a new
// category is worse than predicting without it.
type columnPrep struct {
	Name       string   `json:"name"`
	Kind       Kind     `json:"kind"`
	Fill       float64  `json:"fill,omitempty"`
	Center     float64  `json:"center,omitempty"`
	Scale      float64  `json:"scale,omitempty"`
	FillStr    string   `json:"fill_string,omitempty"`
	Categories []string `json:"categories,omitempty"`

	index map[string]int
}

// preprocessor turns a Frame's features into the dense matrix the estimators see. It is fitted
// on training rows only (inside each cross-validation fold), so no statistic of a test fold
// leaks into the model that scores it.
type preprocessor struct {
	Columns []columnPrep `json:"columns"`
	width   int
}

func fitPreprocessor(f *Frame, scaler, imputer string) (*preprocessor, error) {
	if !slices.Contains(scalers, scaler) {
		return nil, fmt.Errorf("ml: unknown scaler %q; scalers are: %s", scaler, strings.Join(scalers, ", "))
	}
	if !slices.Contains(imputers, imputer) {
		return nil, fmt.Errorf("ml: unknown imputer %q; imputers are: %s", imputer, strings.Join(imputers, ", "))
	}
	p := &preprocessor{}
	for i := range f.Features {
		c := &f.Features[i]
		for r, v := range c.Num {
			if math.IsInf(v, 0) {
				return nil, fmt.Errorf("ml: feature %q is %v in row %d; use NULL for a missing value or filter the row out", c.Name, v, r+1)
			}
		}
		cp := columnPrep{Name: c.Name, Kind: c.Kind, Scale: 1}
		if c.Kind == String {
			cp.fitString(c)
		} else {
			cp.fitNumeric(c, scaler, imputer)
		}
		p.Columns = append(p.Columns, cp)
	}
	p.init()
	return p, nil
}

func (cp *columnPrep) fitString(c *Column) {
	counts := map[string]int{}
	for i, s := range c.Str {
		if !c.IsNull(i) {
			counts[s]++
		}
	}
	for s := range counts {
		cp.Categories = append(cp.Categories, s)
	}
	sort.Strings(cp.Categories)
	best := -1
	for _, s := range cp.Categories { // sorted, so ties go to the smallest, like scikit-learn
		if counts[s] > best {
			cp.FillStr, best = s, counts[s]
		}
	}
}

func (cp *columnPrep) fitNumeric(c *Column, scaler, imputer string) {
	vals := make([]float64, 0, len(c.Num))
	for _, v := range c.Num {
		if !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 { // an all-NULL column carries no information; it becomes a constant 0
		return
	}
	switch imputer {
	case "mean":
		cp.Fill = mean(vals)
	case "median":
		cp.Fill = median(vals)
	case "most_frequent":
		cp.Fill = mostFrequent(vals)
	}
	// Scaling statistics are taken after imputation, as in a scikit-learn pipeline.
	nulls := len(c.Num) - len(vals)
	for range nulls {
		vals = append(vals, cp.Fill)
	}
	switch scaler {
	case "standard":
		m := mean(vals)
		var ss float64
		for _, v := range vals {
			ss += (v - m) * (v - m)
		}
		cp.Center = m
		if sd := math.Sqrt(ss / float64(len(vals))); sd > 0 {
			cp.Scale = sd
		}
	case "minmax":
		lo, hi := slices.Min(vals), slices.Max(vals)
		cp.Center = lo
		if hi > lo {
			cp.Scale = hi - lo
		}
	}
}

func (p *preprocessor) init() {
	p.width = 0
	for i := range p.Columns {
		cp := &p.Columns[i]
		if cp.Kind == String {
			cp.index = make(map[string]int, len(cp.Categories))
			for j, s := range cp.Categories {
				cp.index[s] = j
			}
			p.width += len(cp.Categories)
		} else {
			p.width++
		}
	}
}

// check verifies that f's features match the training features in number and kinds.
func (p *preprocessor) check(f *Frame) error {
	if len(f.Features) != len(p.Columns) {
		return fmt.Errorf("ml: model takes %d features (%s), got %d", len(p.Columns), p.describe(), len(f.Features))
	}
	for i := range f.Features {
		if f.Features[i].Kind != p.Columns[i].Kind {
			return fmt.Errorf("ml: feature %d (%q) is %s, model was trained on %s %q; features are: %s",
				i+1, f.Features[i].Name, f.Features[i].Kind, p.Columns[i].Kind, p.Columns[i].Name, p.describe())
		}
	}
	return nil
}

func (p *preprocessor) describe() string {
	s := make([]string, len(p.Columns))
	for i, c := range p.Columns {
		s[i] = c.Name + " " + string(c.Kind)
	}
	return strings.Join(s, ", ")
}

// transform writes the dense features of f (already checked) into a new matrix.
func (p *preprocessor) transform(f *Frame) *dense {
	n, d := f.Rows(), p.width
	x := &dense{n: n, d: d, v: make([]float64, n*d)}
	off := 0
	for j := range p.Columns {
		cp, c := &p.Columns[j], &f.Features[j]
		if cp.Kind == String {
			for i, s := range c.Str {
				if c.Valid != nil && !c.Valid[i] {
					s = cp.FillStr
				}
				if k, ok := cp.index[s]; ok {
					x.v[i*d+off+k] = 1
				}
			}
			off += len(cp.Categories)
			continue
		}
		inv := 1 / cp.Scale
		for i, v := range c.Num {
			if v != v {
				v = cp.Fill
			}
			x.v[i*d+off] = (v - cp.Center) * inv
		}
		off++
	}
	return x
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func mostFrequent(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	best, bestN := s[0], 0
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		if j-i > bestN {
			best, bestN = s[i], j-i
		}
		i = j
	}
	return best
}
