package ml

import (
	"math"
)

// ColumnInfo summarises one column for ml_feature_info.
type ColumnInfo struct {
	Name string
	Kind Kind
	// Min, Max, Mean and Stddev (sample, n-1) describe numeric columns; NaN when the column is
	// a string column or has fewer values than the statistic needs.
	Min, Max, Mean, Stddev float64
	// MinString and MaxString are the byte-order extremes of a string column.
	MinString, MaxString string
	Nulls, Distinct      int
}

// Describe summarises every feature column of f, then its label when it has one.
func Describe(f *Frame) ([]ColumnInfo, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	cols := f.Features
	if f.Label != nil {
		cols = append(cols[:len(cols):len(cols)], *f.Label)
	}
	out := make([]ColumnInfo, len(cols))
	for i := range cols {
		out[i] = describe(&cols[i])
	}
	return out, nil
}

func describe(c *Column) ColumnInfo {
	nan := math.NaN()
	ci := ColumnInfo{Name: c.Name, Kind: c.Kind, Min: nan, Max: nan, Mean: nan, Stddev: nan}
	if c.Kind == String {
		seen := map[string]bool{}
		for i, s := range c.Str {
			if c.IsNull(i) {
				ci.Nulls++
				continue
			}
			if len(seen) == 0 || s < ci.MinString {
				ci.MinString = s
			}
			if len(seen) == 0 || s > ci.MaxString {
				ci.MaxString = s
			}
			seen[s] = true
		}
		ci.Distinct = len(seen)
		return ci
	}
	seen := map[float64]bool{}
	var sum float64
	n := 0
	for _, v := range c.Num {
		if math.IsNaN(v) {
			ci.Nulls++
			continue
		}
		if n == 0 || v < ci.Min {
			ci.Min = v
		}
		if n == 0 || v > ci.Max {
			ci.Max = v
		}
		seen[v] = true
		sum += v
		n++
	}
	ci.Distinct = len(seen)
	if n == 0 {
		return ci
	}
	ci.Mean = sum / float64(n)
	if n > 1 {
		var ss float64
		for _, v := range c.Num {
			if !math.IsNaN(v) {
				ss += sq(v - ci.Mean)
			}
		}
		ci.Stddev = math.Sqrt(ss / float64(n-1))
	}
	return ci
}
