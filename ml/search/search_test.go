package search

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
)

// branin on x1 ∈ [-5, 10], x2 ∈ [0, 15]; global minimum 0.397887.
func branin(p map[string]any) float64 {
	x1, x2 := p["x1"].(float64), p["x2"].(float64)
	b, c := 5.1/(4*math.Pi*math.Pi), 5/math.Pi
	return sq(x2-b*x1*x1+c*x1-6) + 10*(1-1/(8*math.Pi))*math.Cos(x1) + 10
}

var (
	hartA = [4][6]float64{{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14}, {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}}
	hartP = [4][6]float64{{1312, 1696, 5569, 124, 8283, 5886}, {2329, 4135, 8307, 3736, 1004, 9991},
		{2348, 1451, 3522, 2883, 3047, 6650}, {4047, 8828, 8732, 5743, 1091, 381}}
	hartAlpha = [4]float64{1.0, 1.2, 3.0, 3.2}
)

// hartmann6 on [0, 1]^6; global minimum -3.32237.
func hartmann6(p map[string]any) float64 {
	var s float64
	for i := range 4 {
		var in float64
		for j := range 6 {
			x := p[fmt.Sprintf("x%d", j)].(float64)
			in += hartA[i][j] * sq(x-hartP[i][j]*1e-4)
		}
		s -= hartAlpha[i] * math.Exp(-in)
	}
	return s
}

func sq(x float64) float64 { return x * x }

// bestAfter runs a sequential study and returns the best value after each trial count in at.
func bestAfter(t *testing.T, space *Space, sampler Sampler, f func(map[string]any) float64, at []int) []float64 {
	st := &Study{Space: space, Sampler: sampler, MaxTrials: at[len(at)-1], Parallelism: 1}
	res, err := st.Run(context.Background(), func(_ context.Context, tc *TrialContext) (float64, error) { return f(tc.Params), nil })
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(at))
	best := math.Inf(1)
	k := 0
	for i, tr := range res.Trials {
		best = math.Min(best, tr.Value)
		if k < len(at) && i+1 == at[k] {
			out[k] = best
			k++
		}
	}
	return out
}

func TestTPEOnBraninAndHartmann(t *testing.T) {
	t.Parallel()
	braninSpace, err := ParseSpace([]byte(`{"x1": {"float": [-5, 10]}, "x2": {"float": [0, 15]}}`))
	if err != nil {
		t.Fatal(err)
	}
	hs := `{`
	for j := range 6 {
		hs += fmt.Sprintf(`"x%d": {"float": [0, 1]},`, j)
	}
	hartSpace, err := ParseSpace([]byte(strings.TrimSuffix(hs, ",") + `}`))
	if err != nil {
		t.Fatal(err)
	}
	at := []int{25, 50, 100}
	for _, c := range []struct {
		name  string
		space *Space
		f     func(map[string]any) float64
		goal  float64
	}{{"branin", braninSpace, branin, 0.45}, {"hartmann6", hartSpace, hartmann6, -2.9}} {
		medians := map[string][]float64{}
		for _, sampler := range []string{"random", "tpe"} {
			per := make([][]float64, len(at))
			for seed := range uint64(30) {
				s, _ := NewSampler(sampler, seed)
				for k, v := range bestAfter(t, c.space, s, c.f, at) {
					per[k] = append(per[k], v)
				}
			}
			for k := range at {
				medians[sampler] = append(medians[sampler], medianOf(per[k]))
			}
			t.Logf("%-9s %-6s median best after 25/50/100 trials: %.3f %.3f %.3f", c.name, sampler, medians[sampler][0], medians[sampler][1], medians[sampler][2])
		}
		tpe, rnd := medians["tpe"][2], medians["random"][2]
		if tpe > c.goal {
			t.Errorf("%s: TPE median best after 100 trials %.4f, want ≤ %g", c.name, tpe, c.goal)
		}
		if tpe >= rnd {
			t.Errorf("%s: TPE %.4f is not better than random %.4f", c.name, tpe, rnd)
		}
	}
}
