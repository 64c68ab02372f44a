package system_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestScoreboardInBrowser drives the web scoreboard in headless Chromium: the experiments
// list, the runs table (paging, sorting by a metric, filtering, a malformed filter, picking
// runs), the compare page (parallel coordinates, overlaid charts, the differing-params
// toggle) and a run page whose 5,000-point metric is drawn downsampled, with the hover
// read-out. Screenshots land in test-artifacts/.
func TestScoreboardInBrowser(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	c := n.conn("")
	mustExec(t, c, "CALL ml_create_experiment('ui-exp')")
	const runs = 120
	ids := make([]string, runs)
	gbdtAbove := 0 // runs the filter below keeps
	for i := range runs {
		var id string
		if err := c.QueryRowContext(context.Background(), fmt.Sprintf("CALL ml_start_run('ui-exp', 'r%03d')", i)).Scan(&id, new(string), new(any), new(string), new(int64)); err != nil {
			t.Fatal(err)
		}
		ids[i] = id
		model := []string{"gbdt", "random_forest"}[i%2]
		acc := float64(i) / 200
		var metrics []map[string]any
		for step := range 20 {
			metrics = append(metrics, map[string]any{"key": "loss", "value": 1/float64(step+1) + float64(i)/1000, "timestamp": 1700000000000 + step, "step": step})
		}
		metrics = append(metrics, map[string]any{"key": "acc", "value": acc, "timestamp": 1700000000000, "step": 0})
		batch, _ := json.Marshal(map[string]any{"metrics": metrics, "params": []map[string]any{
			{"key": "lr", "value": strconv.FormatFloat(float64(i)/1000, 'f', -1, 64)}, {"key": "model", "value": model}, {"key": "dataset", "value": "iris"}}})
		mustExec(t, c, fmt.Sprintf("CALL ml_log_batch('%s', '%s')", id, batch))
		mustExec(t, c, fmt.Sprintf("CALL ml_end_run('%s')", id))
		if model == "gbdt" && acc > 0.25 {
			gbdtAbove++
		}
	}
	// A long run: 5,000 points of one metric, one of them NaN, and an artifact.
	var long string
	if err := c.QueryRowContext(context.Background(), "CALL ml_start_run('ui-exp', 'long')").Scan(&long, new(string), new(any), new(string), new(int64)); err != nil {
		t.Fatal(err)
	}
	for b := range 5 {
		var metrics []map[string]any
		for k := range 1000 {
			step := b*1000 + k
			var v any = math.Sin(float64(step)/300) + float64(step)/5000
			if step == 2500 {
				v = "NaN"
			}
			metrics = append(metrics, map[string]any{"key": "val_loss", "value": v, "timestamp": 1700000000000 + step, "step": step})
		}
		batch, _ := json.Marshal(map[string]any{"metrics": metrics})
		mustExec(t, c, fmt.Sprintf("CALL ml_log_batch('%s', '%s')", long, batch))
	}
	base := "http://" + n.srv.HTTPAddr()
	weights := bytes.Repeat([]byte("weights!"), 4096)
	put(t, base+"/api/2.0/mlflow-artifacts/artifacts/1/"+long+"/artifacts/model/weights.bin", weights, 200)

	b := startBrowser(t)

	// The experiments list links to the runs table.
	b.open(base + "/ui")
	var count string
	b.value(`Array.from(document.querySelectorAll("#experiments tbody tr")).filter(r => r.textContent.includes("ui-exp"))[0].cells[2].textContent`, &count)
	if count != strconv.Itoa(runs+1) {
		t.Fatalf("experiments list: ui-exp has %s runs, want %d", count, runs+1)
	}
	b.click(`#experiments a[href="/ui/experiments/1"]`)
	b.settle("/ui/experiments/1")

	rowsShown := func() int {
		var k int
		b.value(`document.querySelectorAll("#runs tbody tr").length`, &k)
		return k
	}
	text := func(sel string) string {
		var s string
		b.value(fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, sel), &s)
		return s
	}
	if k := rowsShown(); k != 50 {
		t.Fatalf("runs table shows %d rows, want a page of 50", k)
	}
	if got := text("#count"); got != fmt.Sprintf("1–50 of %d runs", runs+1) {
		t.Fatalf("runs count: %q", got)
	}
	b.screenshot("scoreboard-runs")

	// Sorting by a metric: a click on its header, highest first, the run without it last.
	b.click(`#runs th.metric a[href*="metrics.acc"]`)
	b.settle("order=metrics.acc")
	var accs []string
	b.value(`(function(){var h=Array.from(document.querySelectorAll("#runs thead th")).findIndex(th => th.title === "metrics.acc"); return Array.from(document.querySelectorAll("#runs tbody tr")).map(r => r.cells[h].textContent);})()`, &accs)
	if len(accs) != 50 || accs[0] != fmtFloat(float64(runs-1)/200) {
		t.Fatalf("sorted by acc: first values %v, want %s first", accs[:min(3, len(accs))], fmtFloat(float64(runs-1)/200))
	}
	for i := 1; i < len(accs); i++ {
		a, _ := strconv.ParseFloat(accs[i-1], 64)
		z, _ := strconv.ParseFloat(accs[i], 64)
		if z > a {
			t.Fatalf("sorted by acc DESC, but %v comes before %v", a, z)
		}
	}
	b.click(`a[rel="next"]`)
	b.settle("offset=50")
	if got := text("#count"); got != fmt.Sprintf("51–100 of %d runs", runs+1) {
		t.Fatalf("second page: %q", got)
	}

	// Filtering with MLflow's syntax, typed into the form.
	b.typeText(`input[name="filter"]`, "metrics.acc > 0.25 and params.model = 'gbdt'")
	b.click(`#search button[type="submit"]`)
	b.settle("filter=")
	if k := rowsShown(); k != gbdtAbove {
		t.Fatalf("filtered table shows %d runs, want %d", k, gbdtAbove)
	}
	var models []string
	b.value(`(function(){var h=Array.from(document.querySelectorAll("#runs thead th")).findIndex(th => th.title === "params.model"); return Array.from(document.querySelectorAll("#runs tbody tr")).map(r => r.cells[h].textContent);})()`, &models)
	for _, m := range models {
		if m != "gbdt" {
			t.Fatalf("filter on params.model = 'gbdt' shows a %q run", m)
		}
	}
	// A malformed filter is shown with where it went wrong, above an empty table.
	b.typeText(`input[name="filter"]`, "metrics.acc > 0.25 and and")
	b.click(`#search button[type="submit"]`)
	b.settle("and+and")
	if msg := text("#error"); !strings.Contains(msg, "at character 24") || rowsShown() != 0 {
		t.Fatalf("malformed filter: error %q with %d rows", msg, rowsShown())
	}

	// Picking three runs enables Compare, which opens the compare page.
	b.open(base + "/ui/experiments/1?order=attributes.run_name+ASC")
	var disabled string
	b.value(`document.getElementById("compare").getAttribute("aria-disabled")`, &disabled)
	if disabled != "true" {
		t.Fatalf("Compare is enabled with no run picked")
	}
	for i := 2; i <= 4; i++ { // row 1 is "long"; then r000, r001, r002
		b.click(fmt.Sprintf(`#runs tbody tr:nth-child(%d) input.pick`, i))
	}
	var href string
	b.value(`document.getElementById("compare").getAttribute("aria-disabled") + " " + document.getElementById("compare").href`, &href)
	if !strings.HasPrefix(href, "false ") || !strings.Contains(href, ids[0]) || !strings.Contains(href, ids[2]) {
		t.Fatalf("after picking 3 runs the Compare link is %q", href)
	}
	b.click("#compare")
	b.settle("/ui/compare")
	var lines, charts, chartLines int
	b.value(`document.querySelectorAll("#parallel svg path.line").length`, &lines)
	b.value(`document.querySelectorAll(".charts svg.plot").length`, &charts)
	b.value(`document.querySelectorAll(".charts svg.plot")[0].querySelectorAll("path.line").length`, &chartLines)
	if lines != 3 || charts != 2 || chartLines != 3 {
		t.Fatalf("compare page: %d parallel-coordinate lines, %d charts with %d lines; want 3, 2 (acc, loss), 3", lines, charts, chartLines)
	}
	var shown string
	b.value(`getComputedStyle(Array.from(document.querySelectorAll("#params tr")).find(r => r.cells[0].textContent === "dataset")).display`, &shown)
	if shown == "none" {
		t.Fatalf("the shared param is hidden before the toggle")
	}
	b.click("#only-diff")
	b.value(`getComputedStyle(Array.from(document.querySelectorAll("#params tr")).find(r => r.cells[0].textContent === "dataset")).display`, &shown)
	if shown != "none" {
		t.Fatalf("'only the ones that differ' left the shared param shown (%s)", shown)
	}
	b.screenshot("scoreboard-compare")

	// The long run: its chart is drawn from at most 1,000 points, says so, and reads out
	// values under the mouse; the artifact is listed and downloads.
	b.open(base + "/ui/runs/" + long)
	var pathLen int
	b.value(`document.querySelector(".charts svg.plot path.line").getAttribute("d").split(/[ML]/).length - 1`, &pathLen)
	if pathLen < 500 || pathLen > 1000 {
		t.Fatalf("the 5,000-point chart is drawn with %d points, want 500 to 1,000", pathLen)
	}
	notes := text(".charts figcaption.notes")
	if !strings.Contains(notes, "of 4999 points drawn") || !strings.Contains(notes, "1 NaN or infinite values not drawn") {
		t.Fatalf("chart notes: %q", notes)
	}
	b.hover(".charts svg.plot", 0.5, 0.5)
	var tip string
	b.value(`(function(){var t=document.querySelector(".charts .tip"); return t && t.style.display !== "none" ? t.textContent : "";})()`, &tip)
	if !strings.Contains(tip, "x = ") || !strings.Contains(tip, "val_loss: ") {
		t.Fatalf("hovering the chart shows %q", tip)
	}
	var link string
	b.value(`document.querySelector("#artifacts a").getAttribute("href")`, &link)
	if !strings.HasSuffix(link, "/artifacts/model/weights.bin") {
		t.Fatalf("artifact link %q", link)
	}
	resp, err := http.Get(base + link)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, weights) {
		t.Fatalf("artifact download: %d bytes, want %d", len(got), len(weights))
	}
	b.screenshot("scoreboard-run")
	b.checkErrors()

	// Bad requests get error pages with the right status.
	for path, want := range map[string]int{
		"/ui/runs/nosuchrun":                 404,
		"/ui/experiments/999":                404,
		"/ui/compare?runs=" + ids[0]:         400,
		"/ui/compare?runs=" + ids[0] + ",zz": 404,
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || !bytes.Contains(body, []byte(`id="error"`)) {
			t.Fatalf("GET %s: %d, want %d with an error page: %s", path, resp.StatusCode, want, body)
		}
	}
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// put sends body with PUT and checks the status.
func put(t *testing.T, url string, body []byte, want int) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("PUT %s: %d (%s), want %d", url, resp.StatusCode, out, want)
	}
	return out
}
