package server

import (
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Charts for the scoreboard, drawn here as SVG so a page shows its charts without
// JavaScript; the points each chart was drawn from ride along in a data attribute for the
// hover read-out in app.js. Long histories are downsampled to at most maxChartPoints per
// series, keeping each bucket's lowest and highest value so spikes stay visible.

const (
	maxChartPoints = 1000
	chartW, chartH = 560, 260
	padL, padR     = 56, 12
	padT, padB     = 12, 34
)

// palette is Tableau 10: distinct, readable on white.
var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

func color(i int) string { return palette[i%len(palette)] }

type point struct{ x, y float64 }

type series struct {
	name   string
	color  string
	points []point // sorted by x; finite values only
	total  int     // points logged, before downsampling and without NaN/±Inf
	skip   int     // NaN and ±Inf values, which a line cannot show
}

// downsample keeps at most limit points: for each of limit/2 buckets of consecutive points,
// the lowest and the highest, in x order.
func downsample(pts []point, limit int) []point {
	if len(pts) <= limit {
		return pts
	}
	buckets := limit / 2
	out := make([]point, 0, limit)
	for b := 0; b < buckets; b++ {
		lo, hi := b*len(pts)/buckets, (b+1)*len(pts)/buckets
		if lo >= hi {
			continue
		}
		mn, mx := lo, lo
		for i := lo + 1; i < hi; i++ {
			if pts[i].y < pts[mn].y {
				mn = i
			}
			if pts[i].y > pts[mx].y {
				mx = i
			}
		}
		if mn == mx {
			out = append(out, pts[mn])
		} else {
			out = append(out, pts[min(mn, mx)], pts[max(mn, mx)])
		}
	}
	return out
}

// widen pads [lo, hi] by share of its width on each side (a zero-width range by a share of
// its magnitude, at least 1e-9), within the finite floats.
func widen(lo, hi, share float64) (float64, float64) {
	half := hi/2 - lo/2
	pad := half * 2 * share
	if half == 0 {
		pad = math.Max(math.Abs(lo)*math.Max(share, 1e-6), 1e-9)
		if share == 0 {
			pad = math.Max(math.Abs(lo)*1e-6, 1)
		}
	}
	clamp := func(v float64) float64 { return math.Max(-math.MaxFloat64, math.Min(math.MaxFloat64, v)) }
	lo, hi = clamp(lo-pad), clamp(hi+pad)
	if hi == lo { // ±MaxFloat64 alone
		if lo > 0 {
			lo /= 2
		} else {
			hi /= 2
		}
	}
	return lo, hi
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi < lo {
		lo, hi = hi, lo
	}
	if hi == lo {
		return []float64{lo}
	}
	raw := (hi/2 - lo/2) / float64(n) * 2
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	limit := hi + step*1e-9
	if math.IsInf(limit, 0) {
		limit = hi
	}
	for k := math.Ceil(lo / step); k*step <= limit; k++ {
		v := k * step
		if v == 0 {
			v = 0 // not -0
		}
		out = append(out, v)
		if len(out) > 50 {
			break
		}
	}
	return out
}

// fmtNum prints a number compactly: up to 6 significant digits, NaN and ±Infinity as
// MLflow shows them.
func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// lineChart draws series against a shared x axis (xLabel) as an SVG element.
func lineChart(title, xLabel string, ss []series) template.HTML {
	x0, x1, y0, y1 := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	skipped, drawn := 0, 0
	for i := range ss {
		ss[i].points = downsample(ss[i].points, maxChartPoints)
		skipped += ss[i].skip
		for _, p := range ss[i].points {
			x0, x1 = math.Min(x0, p.x), math.Max(x1, p.x)
			y0, y1 = math.Min(y0, p.y), math.Max(y1, p.y)
			drawn++
		}
	}
	var b strings.Builder
	esc := html.EscapeString
	type jsSeries struct {
		N string       `json:"n"`
		C string       `json:"c"`
		P [][2]float64 `json:"p"`
	}
	var data []jsSeries
	for _, s := range ss {
		js := jsSeries{N: s.name, C: s.color, P: make([][2]float64, len(s.points))}
		for i, p := range s.points {
			js.P[i] = [2]float64{p.x, p.y}
		}
		data = append(data, js)
	}
	if drawn == 0 {
		fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s</figcaption><p class="muted">no finite values to draw`, esc(title))
		if skipped > 0 {
			fmt.Fprintf(&b, ` (%d NaN or infinite)`, skipped)
		}
		b.WriteString(`</p></figure>`)
		return template.HTML(b.String())
	}
	// Ranges are padded and scaled through frac, which stays finite for values near
	// ±MaxFloat64; a one-point range is widened relative to its size (a step of 2^53
	// plus one is the same float).
	x0, x1 = widen(x0, x1, 0)
	y0, y1 = widen(y0, y1, 0.05)
	px := func(x float64) float64 { return padL + frac(x, x0, x1)*float64(chartW-padL-padR) }
	py := func(y float64) float64 { return padT + (1-frac(y, y0, y1))*float64(chartH-padT-padB) }
	raw, _ := json.Marshal(data)
	fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s</figcaption>`, esc(title))
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %d %d" role="img" aria-label="%s" data-x0="%g" data-x1="%g" data-y0="%g" data-y1="%g" data-pl="%d" data-pr="%d" data-pt="%d" data-pb="%d" data-series="%s">`,
		chartW, chartH, esc(title), x0, x1, y0, y1, padL, padR, padT, padB, esc(string(raw)))
	fmt.Fprintf(&b, `<rect class="frame" x="%d" y="%d" width="%d" height="%d"/>`, padL, padT, chartW-padL-padR, chartH-padT-padB)
	for _, t := range niceTicks(y0, y1, 6) {
		y := py(t)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>`,
			padL, chartW-padR, y, y, padL-4, y+4, esc(fmtNum(t)))
	}
	for _, t := range niceTicks(x0, x1, 6) {
		x := px(t)
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/><text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`,
			x, x, padT, chartH-padB, x, chartH-padB+14, esc(fmtNum(t)))
	}
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="%d" text-anchor="middle">%s</text>`, (chartW+padL)/2, chartH-4, esc(xLabel))
	for _, s := range ss {
		if len(s.points) == 0 {
			continue
		}
		fmt.Fprintf(&b, `<path class="line" stroke="%s" d="`, s.color)
		for i, p := range s.points {
			cmd := 'L'
			if i == 0 {
				cmd = 'M'
			}
			fmt.Fprintf(&b, "%c%.1f %.1f", cmd, px(p.x), py(p.y))
		}
		b.WriteString(`"><title>`)
		b.WriteString(esc(s.name))
		b.WriteString(`</title></path>`)
		if len(s.points) == 1 {
			fmt.Fprintf(&b, `<circle class="dot" fill="%s" cx="%.1f" cy="%.1f" r="3"/>`, s.color, px(s.points[0].x), py(s.points[0].y))
		}
	}
	b.WriteString(`</svg>`)
	var notes []string
	if len(ss) > 1 {
		var legend strings.Builder
		for _, s := range ss {
			fmt.Fprintf(&legend, `<span class="key">%s%s</span>`, swatch(s.color), esc(s.name))
		}
		notes = append(notes, `<span class="legend">`+legend.String()+`</span>`)
	}
	total := 0
	for _, s := range ss {
		total += s.total
	}
	if drawn < total {
		notes = append(notes, fmt.Sprintf("%d of %d points drawn (each stretch's lowest and highest)", drawn, total))
	}
	if skipped > 0 {
		notes = append(notes, fmt.Sprintf("%d NaN or infinite values not drawn", skipped))
	}
	if len(notes) > 0 {
		b.WriteString(`<figcaption class="notes">` + strings.Join(notes, " · ") + `</figcaption>`)
	}
	b.WriteString(`</figure>`)
	return template.HTML(b.String())
}

// pcAxis is one axis of a parallel-coordinates plot: numeric (lo..hi) or categorical.
type pcAxis struct {
	name   string
	has    []bool    // the line crosses this axis
	nums   []float64 // numeric axis: the values
	labels []string  // categorical axis: the values as shown
	cats   []string  // sorted categories
	isNum  bool
	lo, hi float64
}

// newPCAxis builds an axis from one raw value per line (nil where the run lacks it). The
// axis is numeric when every value is a number or a numeric string; NaN and ±Inf then sit
// off the axis (the line breaks there) rather than turning it into categories.
func newPCAxis(name string, values []any) pcAxis {
	a := pcAxis{name: name, isNum: true, lo: math.Inf(1), hi: math.Inf(-1),
		has: make([]bool, len(values)), nums: make([]float64, len(values)), labels: make([]string, len(values))}
	for i, v := range values {
		if v == nil {
			continue
		}
		a.labels[i] = cellText(v)
		f, ok := v.(float64)
		if !ok {
			var err error
			if f, err = strconv.ParseFloat(fmt.Sprint(v), 64); err != nil {
				a.isNum = false
			}
		}
		a.nums[i] = f
	}
	seen := map[string]bool{}
	for i, v := range values {
		if v == nil {
			continue
		}
		if a.isNum {
			f := a.nums[i]
			if math.IsNaN(f) || math.IsInf(f, 0) {
				continue
			}
			a.lo, a.hi = math.Min(a.lo, f), math.Max(a.hi, f)
		} else if !seen[a.labels[i]] {
			seen[a.labels[i]] = true
			a.cats = append(a.cats, a.labels[i])
		}
		a.has[i] = true
	}
	sort.Strings(a.cats)
	return a
}

// pos is where line i crosses the axis, 0 (bottom) to 1 (top), or false when it does not.
func (a pcAxis) pos(i int) (float64, bool) {
	if !a.has[i] {
		return 0, false
	}
	if a.isNum {
		if a.hi == a.lo {
			return 0.5, true
		}
		return frac(a.nums[i], a.lo, a.hi), true
	}
	if len(a.cats) == 1 {
		return 0.5, true
	}
	return float64(sort.SearchStrings(a.cats, a.labels[i])) / float64(len(a.cats)-1), true
}

// frac is (v-lo)/(hi-lo) without overflow for any finite values.
func frac(v, lo, hi float64) float64 {
	return (v/2 - lo/2) / (hi/2 - lo/2)
}

// parallelCoordinates draws one line per run across the axes.
func parallelCoordinates(names, colors []string, axes []pcAxis) template.HTML {
	if len(axes) < 2 {
		return template.HTML(`<p class="muted">parallel coordinates need at least two params or metrics that the runs have</p>`)
	}
	const w, h, top, bottom, side = 760, 300, 34, 30, 60
	esc := html.EscapeString
	ax := func(j int) float64 { return side + float64(j)*float64(w-2*side)/float64(len(axes)-1) }
	ay := func(p float64) float64 { return top + (1-p)*float64(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot pc" viewBox="0 0 %d %d" role="img" aria-label="parallel coordinates">`, w, h)
	for j, a := range axes {
		x := ax(j)
		fmt.Fprintf(&b, `<line class="pcaxis" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/>`, x, x, top, h-bottom)
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x, top-18, esc(a.name))
		if a.isNum {
			fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x, top-5, esc(fmtNum(a.hi)))
			fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x, h-bottom+14, esc(fmtNum(a.lo)))
		} else {
			for k, c := range a.cats {
				p := 0.5
				if len(a.cats) > 1 {
					p = float64(k) / float64(len(a.cats)-1)
				}
				fmt.Fprintf(&b, `<text class="tick cat" x="%.1f" y="%.1f">%s</text>`, x+4, ay(p)+4, esc(c))
			}
		}
	}
	for i, name := range names {
		var d strings.Builder
		pen := 'M'
		for j, a := range axes {
			p, ok := a.pos(i)
			if !ok {
				pen = 'M'
				continue
			}
			fmt.Fprintf(&d, "%c%.1f %.1f", pen, ax(j), ay(p))
			pen = 'L'
		}
		fmt.Fprintf(&b, `<path class="line" stroke="%s" d="%s"><title>%s</title></path>`, colors[i], d.String(), esc(name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// swatch is a small square of a series' colour, for legends.
func swatch(c string) template.HTML {
	return template.HTML(`<svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10" fill="` + html.EscapeString(c) + `"/></svg>`)
}
