package server

import (
	"math"
	"strings"
	"testing"
)

func TestDownsampleKeepsExtremes(t *testing.T) {
	pts := make([]point, 100_000)
	for i := range pts {
		pts[i] = point{float64(i), math.Sin(float64(i) / 1000)}
	}
	pts[54_321].y = 50 // a spike
	got := downsample(pts, maxChartPoints)
	if len(got) > maxChartPoints || len(got) < maxChartPoints/2 {
		t.Fatalf("%d points kept", len(got))
	}
	spike := false
	for i, p := range got {
		spike = spike || p.y == 50
		if i > 0 && got[i-1].x >= p.x {
			t.Fatalf("points out of order at %d", i)
		}
	}
	if !spike {
		t.Fatal("the spike was dropped")
	}
}

func TestChartsOfExtremeValuesHaveNoNaN(t *testing.T) {
	for name, pts := range map[string][]point{
		"huge range":      {{0, -math.MaxFloat64}, {1, math.MaxFloat64}},
		"max alone":       {{3, math.MaxFloat64}},
		"min alone":       {{3, -math.MaxFloat64}},
		"one point far":   {{1 << 53, 0.5}},
		"flat":            {{0, 2}, {1, 2}, {2, 2}},
		"tiny difference": {{0, 1}, {1, 1 + 1e-15}},
	} {
		svg := string(lineChart("m", "step", []series{{name: "r", color: color(0), points: pts, total: len(pts)}}))
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
			t.Errorf("%s: the chart has NaN or Inf coordinates:\n%s", name, svg)
		}
		if !strings.Contains(svg, `class="line"`) {
			t.Errorf("%s: no line drawn", name)
		}
	}
}

func TestNiceTicks(t *testing.T) {
	ticks := niceTicks(-0.86, 1.99, 6)
	want := []float64{-0.5, 0, 0.5, 1, 1.5}
	if len(ticks) != len(want) {
		t.Fatalf("ticks %v, want %v", ticks, want)
	}
	for i := range want {
		if math.Abs(ticks[i]-want[i]) > 1e-12 || math.Signbit(ticks[i]) != math.Signbit(want[i]) {
			t.Fatalf("ticks %v, want %v (no -0)", ticks, want)
		}
	}
}

func TestParallelAxes(t *testing.T) {
	// Numbers stay numbers with NaN or Inf among them: 10 above 9, NaN off the axis.
	a := newPCAxis("acc", []any{9.0, 10.0, math.NaN(), nil, math.Inf(1)})
	if !a.isNum {
		t.Fatal("a numeric axis became categorical")
	}
	p9, _ := a.pos(0)
	p10, _ := a.pos(1)
	if p10 <= p9 {
		t.Fatalf("10 at %v is not above 9 at %v", p10, p9)
	}
	for _, i := range []int{2, 3, 4} {
		if _, ok := a.pos(i); ok {
			t.Fatalf("value %d is on the axis", i)
		}
	}
	// Numeric strings (params) are numeric; other strings are categories.
	if b := newPCAxis("lr", []any{"0.1", "0.01"}); !b.isNum {
		t.Fatal("numeric params became categories")
	}
	c := newPCAxis("model", []any{"rf", "gbdt", nil})
	if c.isNum || len(c.cats) != 2 {
		t.Fatalf("categorical axis: %+v", c)
	}
	if !sameValue(math.NaN(), math.NaN()) || sameValue(0.9123451, 0.9123454) || sameValue(nil, "") {
		t.Fatal("sameValue compares display strings, not values")
	}
}
