package search

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
)

// Sampler proposes the parameters of the next trial. A proposal is a function of the seed and
// the trials so far (RUNNING ones included), so a study with parallelism 1 replays exactly.
// Values are: the choice as written for a choice (string, float64 or bool), int for int ranges,
// float64 for float and log_float ranges. Inactive conditional parameters are absent. A Study
// calls Sample under its lock, so implementations need not be safe for concurrent use.
type Sampler interface {
	Sample(space *Space, trials []Trial) (map[string]any, error)
}

// NewSampler returns the sampler named in SQL: grid, random or tpe.
func NewSampler(name string, seed uint64) (Sampler, error) {
	switch name {
	case "grid":
		return NewGrid(seed), nil
	case "random":
		return NewRandom(seed), nil
	case "tpe", "":
		return NewTPE(seed), nil
	}
	return nil, fmt.Errorf("search: unknown sampler %q; samplers are: grid, random, tpe", name)
}

// trialRNG is the generator for the proposal that follows trials.
func trialRNG(seed uint64, trials []Trial, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed^stream, uint64(len(trials))))
}

// Random samples every active parameter uniformly (log-uniformly for log_float).
type Random struct{ seed uint64 }

// NewRandom returns a random sampler.
func NewRandom(seed uint64) *Random { return &Random{seed: seed} }

func (r *Random) Sample(space *Space, trials []Trial) (map[string]any, error) {
	rng := trialRNG(r.seed, trials, 0x72616e646f6d)
	out := map[string]any{}
	for i := range space.Params {
		p := &space.Params[i]
		if p.Active(out) {
			out[p.Name] = sampleUniform(p, rng)
		}
	}
	return out, nil
}

func sampleUniform(p *Param, rng *rand.Rand) any {
	switch p.Kind {
	case Categorical:
		return p.Choices[rng.IntN(len(p.Choices))]
	case Int:
		return int(p.Lo) + rng.IntN(int(p.Hi-p.Lo)+1)
	case LogFloat: // clamped: exp(log(x)) is not always x
		return math.Min(math.Max(math.Exp(math.Log(p.Lo)+rng.Float64()*(math.Log(p.Hi)-math.Log(p.Lo))), p.Lo), p.Hi)
	}
	return p.Lo + rng.Float64()*(p.Hi-p.Lo)
}

// Grid tries every point of a grid over the space, in an order shuffled by the seed (like
// Optuna's GridSampler), one point per trial, skipping points already tried; then it reports
// ErrSpaceExhausted. Ranges are discretised: an int range into all its values when there are
// at most gridSteps of them, otherwise gridSteps evenly spaced ones; float and log_float ranges
// into gridSteps evenly (log-)spaced values.
type Grid struct {
	seed   uint64
	points []map[string]any
	space  *Space
}

const (
	gridSteps     = 5
	gridMaxPoints = 100000
)

// NewGrid returns a grid sampler.
func NewGrid(seed uint64) *Grid { return &Grid{seed: seed} }

func (g *Grid) Sample(space *Space, trials []Trial) (map[string]any, error) {
	if g.space != space {
		pts, err := gridPoints(space)
		if err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewPCG(g.seed, 0x67726964))
		rng.Shuffle(len(pts), func(i, j int) { pts[i], pts[j] = pts[j], pts[i] })
		g.points, g.space = pts, space
	}
	for _, pt := range g.points {
		if !slices.ContainsFunc(trials, func(t Trial) bool { return reflect.DeepEqual(t.Params, pt) }) {
			out := make(map[string]any, len(pt))
			for k, v := range pt {
				out[k] = v
			}
			return out, nil
		}
	}
	return nil, ErrSpaceExhausted
}

func gridValues(p *Param) []any {
	switch p.Kind {
	case Categorical:
		return p.Choices
	case Int:
		lo, hi := int(p.Lo), int(p.Hi)
		var out []any
		if hi-lo+1 <= gridSteps {
			for v := lo; v <= hi; v++ {
				out = append(out, v)
			}
			return out
		}
		for i := range gridSteps {
			v := lo + int(math.Round(float64(i)*float64(hi-lo)/(gridSteps-1)))
			if !slices.Contains(out, any(v)) {
				out = append(out, v)
			}
		}
		return out
	}
	if p.Lo == p.Hi {
		return []any{p.Lo}
	}
	out := make([]any, gridSteps)
	for i := range gridSteps {
		f := float64(i) / (gridSteps - 1)
		v := p.Lo + f*(p.Hi-p.Lo)
		if p.Kind == LogFloat {
			v = math.Exp(math.Log(p.Lo) + f*(math.Log(p.Hi)-math.Log(p.Lo)))
		}
		out[i] = math.Min(math.Max(v, p.Lo), p.Hi) // the ends exactly, despite rounding
	}
	return out
}

// gridPoints enumerates the grid, visiting parameters in space order so a conditional
// parameter is expanded only under its algorithm.
func gridPoints(space *Space) ([]map[string]any, error) {
	pts := []map[string]any{{}}
	for i := range space.Params {
		p := &space.Params[i]
		vals := gridValues(p)
		var next []map[string]any
		for _, pt := range pts {
			if !p.Active(pt) {
				next = append(next, pt)
				continue
			}
			for _, v := range vals {
				np := make(map[string]any, len(pt)+1)
				for k, x := range pt {
					np[k] = x
				}
				np[p.Name] = v
				next = append(next, np)
			}
		}
		if len(next) > gridMaxPoints {
			return nil, fmt.Errorf("search: the grid has more than %d points; narrow the space or use the random or tpe sampler", gridMaxPoints)
		}
		pts = next
	}
	return pts, nil
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
