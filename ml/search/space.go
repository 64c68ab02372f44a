// Package search is hyper-parameter search: a JSON search space with conditional
// sub-spaces, the grid, random and TPE samplers, a median pruner, and a study runner that
// drives an objective over trials on several goroutines. It knows nothing of models: an
// objective is any function of a trial's parameters, which is how it is tested on Branin
// and Hartmann-6 and how package ml runs model search on top of it.
package search

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Kind is the kind of a search-space parameter.
type Kind string

const (
	Categorical Kind = "choice"
	Int         Kind = "int"
	Float       Kind = "float"
	LogFloat    Kind = "log_float"
)

// Param is one dimension of a space. Conditional parameters (Cond != "") exist only in trials
// whose "algorithm" is Cond; their Name is "<algorithm>.<name>", so a parameter of two
// algorithms is two independent dimensions, as in Optuna's define-by-run spaces.
type Param struct {
	Name    string
	Kind    Kind
	Choices []any   // Categorical: strings, float64 or bools, as written
	Lo, Hi  float64 // Int, Float, LogFloat: inclusive bounds
	Cond    string
}

// Space is a parsed search space. Params lists unconditional parameters first ("algorithm"
// among them when present), then each algorithm's, in sorted name order, so sampling visits
// a parent before the parameters that depend on it.
type Space struct {
	Params []Param
}

// AlgorithmKey is the parameter whose value selects a conditional sub-space.
const AlgorithmKey = "algorithm"

// Active reports whether p takes part in a trial whose parameters so far are params.
func (p *Param) Active(params map[string]any) bool {
	return p.Cond == "" || params[AlgorithmKey] == p.Cond
}

// Short is the parameter name without its algorithm prefix.
func (p *Param) Short() string {
	if p.Cond == "" {
		return p.Name
	}
	return strings.TrimPrefix(p.Name, p.Cond+".")
}

// ParseSpace parses a JSON search space:
//
//	{"algorithm": ["logistic_regression", "random_forest"],
//	 "random_forest": {"n_estimators": {"int": [50, 500]}},
//	 "scaler": ["none", "standard"],
//	 "C": {"log_float": [0.01, 100]}}
//
// A list is a choice; {"int": [lo, hi]}, {"float": [lo, hi]} and {"log_float": [lo, hi]} are
// ranges (bounds inclusive, lo > 0 for log_float); a bare string, number or bool is a fixed
// value. An object keyed by one of the algorithm choices is that algorithm's sub-space.
func ParseSpace(data []byte) (*Space, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("search space: not a JSON object: %w", err)
	}
	if len(top) == 0 {
		return nil, fmt.Errorf("search space is empty; give at least one parameter, e.g. {\"algorithm\": [\"random_forest\", \"gbdt\"]}")
	}
	s := &Space{}
	var algorithms []string
	if raw, ok := top[AlgorithmKey]; ok {
		p, err := parseParam(AlgorithmKey, raw)
		if err != nil {
			return nil, err
		}
		if p.Kind != Categorical {
			return nil, fmt.Errorf("search space: %q must be a name or a list of names", AlgorithmKey)
		}
		for _, c := range p.Choices {
			a, ok := c.(string)
			if !ok {
				return nil, fmt.Errorf("search space: algorithm %v is not a name", c)
			}
			if slices.Contains(algorithms, a) {
				return nil, fmt.Errorf("search space: algorithm %q is listed twice", a)
			}
			algorithms = append(algorithms, a)
		}
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var conditional []Param
	for _, k := range keys {
		raw := top[k]
		if k == AlgorithmKey {
			p, _ := parseParam(k, raw)
			s.Params = append(s.Params, *p)
			continue
		}
		if sub, ok := subSpace(raw); ok {
			if !slices.Contains(algorithms, k) {
				if len(algorithms) == 0 {
					return nil, fmt.Errorf("search space: %q is an object but not a range ({\"int\"|\"float\"|\"log_float\": [lo, hi]}); a sub-space needs an \"algorithm\" list naming it", k)
				}
				return nil, fmt.Errorf("search space: sub-space %q is for an algorithm not in the algorithm list (%s); add it there or remove the sub-space", k, strings.Join(algorithms, ", "))
			}
			names := make([]string, 0, len(sub))
			for n := range sub {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if _, nested := subSpace(sub[n]); nested {
					return nil, fmt.Errorf("search space: %s.%s: sub-spaces do not nest; give a list or a range", k, n)
				}
				p, err := parseParam(k+"."+n, sub[n])
				if err != nil {
					return nil, err
				}
				p.Cond = k
				conditional = append(conditional, *p)
			}
			continue
		}
		p, err := parseParam(k, raw)
		if err != nil {
			return nil, err
		}
		s.Params = append(s.Params, *p)
	}
	// "algorithm" first among the unconditional parameters
	slices.SortStableFunc(s.Params, func(a, b Param) int {
		if a.Name == AlgorithmKey {
			return -1
		}
		if b.Name == AlgorithmKey {
			return 1
		}
		return 0
	})
	s.Params = append(s.Params, conditional...)
	return s, nil
}

// subSpace reports whether raw is an object other than a range.
func subSpace(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return nil, false
	}
	if len(obj) == 1 {
		for k := range obj {
			if k == string(Int) || k == string(Float) || k == string(LogFloat) {
				return nil, false
			}
		}
	}
	return obj, true
}

func parseParam(name string, raw json.RawMessage) (*Param, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("search space: %s: %w", name, err)
	}
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return nil, fmt.Errorf("search space: %s is an empty list; give at least one choice", name)
		}
		for _, c := range x {
			switch c.(type) {
			case string, float64, bool:
			default:
				return nil, fmt.Errorf("search space: %s: choice %v is not a string, number or boolean", name, c)
			}
		}
		for i := range x {
			for j := i + 1; j < len(x); j++ {
				if x[i] == x[j] {
					return nil, fmt.Errorf("search space: %s: choice %v is listed twice", name, x[i])
				}
			}
		}
		return &Param{Name: name, Kind: Categorical, Choices: x}, nil
	case string, float64, bool:
		return &Param{Name: name, Kind: Categorical, Choices: []any{x}}, nil
	case map[string]any:
		if len(x) != 1 {
			return nil, fmt.Errorf("search space: %s: a range is one of {\"int\": [lo, hi]}, {\"float\": [lo, hi]}, {\"log_float\": [lo, hi]}", name)
		}
		for k, b := range x {
			kind := Kind(k)
			bounds, ok := b.([]any)
			if !ok || len(bounds) != 2 {
				return nil, fmt.Errorf("search space: %s: %s needs [lo, hi]", name, k)
			}
			lo, ok1 := bounds[0].(float64)
			hi, ok2 := bounds[1].(float64)
			if !ok1 || !ok2 || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
				return nil, fmt.Errorf("search space: %s: %s bounds must be numbers", name, k)
			}
			switch {
			case kind != Int && kind != Float && kind != LogFloat:
				return nil, fmt.Errorf("search space: %s: unknown range %q; ranges are int, float, log_float", name, k)
			case lo > hi:
				return nil, fmt.Errorf("search space: %s: %s range [%g, %g] has lo > hi", name, k, lo, hi)
			case kind == Int && (lo != math.Trunc(lo) || hi != math.Trunc(hi)):
				return nil, fmt.Errorf("search space: %s: int range [%g, %g] needs integer bounds", name, lo, hi)
			case kind == LogFloat && lo <= 0:
				return nil, fmt.Errorf("search space: %s: log_float range [%g, %g] needs lo > 0", name, lo, hi)
			}
			return &Param{Name: name, Kind: kind, Lo: lo, Hi: hi}, nil
		}
	}
	return nil, fmt.Errorf("search space: %s: %v is not a list, a range or a value", name, v)
}
