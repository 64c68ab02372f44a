package bench

import (
	"database/sql"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkML measures the ML tracking figures: ml_log_metric calls/s from 1 and from 8
// clients (autocommit: one commit per call, group-committed), ml_log_batch of 1000 metrics,
// a latest_metrics query over 10,000 runs, and the scoreboard's pages over them (with one
// run of 100,000 points).
func BenchmarkML(b *testing.B) {
	onlyPart(b, "ml")
	n := startNode(b)
	db := n.open(b, "", 8)
	var runID string
	if err := db.QueryRow("CALL ml_start_run('Default', 'bench')").Scan(&runID, new(string), new(any), new(string), new(int64)); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		figures = nil
		for _, clients := range []int{1, 8} {
			var calls atomic.Int64
			var wg sync.WaitGroup
			stop := time.Now().Add(3 * time.Second)
			start := time.Now()
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func(c int) {
					defer wg.Done()
					for step := 0; time.Now().Before(stop); step++ {
						if _, err := db.Exec(fmt.Sprintf("CALL ml_log_metric('%s', 'loss_%d', %f, %d)", runID, c, 1/float64(step+1), step)); err != nil {
							b.Error(err)
							return
						}
						calls.Add(1)
					}
				}(c)
			}
			wg.Wait()
			d := time.Since(start)
			figure("ml_log_metric_%dclients: %d calls in %.1fs = %s calls/s", clients, calls.Load(), d.Seconds(), rate(calls.Load(), d))
		}
		var parts []string
		for k := 0; k < 1000; k++ {
			parts = append(parts, fmt.Sprintf(`{"key": "m%d", "value": %d, "step": 1}`, k%50, k))
		}
		body := `{"metrics": [` + strings.Join(parts, ", ") + `]}`
		var lat []time.Duration
		for r := 0; r < 5; r++ {
			s := time.Now()
			mustExec(b, db, fmt.Sprintf("CALL ml_log_batch('%s', '%s')", runID, body))
			lat = append(lat, time.Since(s))
		}
		figure("ml_log_batch_1000: 1000 metrics in one call: median of 5 %s", ms(percentile(lat, 0.5)))

		// 10,000 runs with 10 metric points each, loaded as rows (the procedures would take
		// minutes), then the scoreboard's query.
		runs := 10_000
		imp := filepath.Join(n.dataDir, "import")
		os.MkdirAll(imp, 0o755)
		var rb, mb strings.Builder
		for r := 0; r < runs; r++ {
			id := fmt.Sprintf("%032x", r+1)
			fmt.Fprintf(&rb, "%s,0,run%d,FINISHED,1700000000000,1700000001000,bench,,mlflow-artifacts:/0/%s/artifacts,active,\n", id, r, id)
			for s := 0; s < 10; s++ {
				fmt.Fprintf(&mb, "%s,acc,%f,%d,%d\n", id, float64((r*7+s)%1000)/1000, 1700000000000+s, s)
			}
		}
		os.WriteFile(filepath.Join(imp, "runs.csv"), []byte(rb.String()), 0o644)
		os.WriteFile(filepath.Join(imp, "metrics.csv"), []byte(mb.String()), 0o644)
		mustExec(b, db, "INSERT INTO ml.runs SELECT * FROM read_csv('file://"+imp+"/runs.csv', 'header=false, columns=a VARCHAR(32),b VARCHAR(32),c VARCHAR(250),d VARCHAR(9),e BIGINT,f BIGINT,g VARCHAR(256),h TEXT,i TEXT,j VARCHAR(20),k VARCHAR(32)')")
		mustExec(b, db, "INSERT INTO ml.metrics SELECT * FROM read_csv('file://"+imp+"/metrics.csv', 'header=false, columns=a VARCHAR(32),b VARCHAR(250),c DOUBLE,d BIGINT,e BIGINT')")
		for _, q := range []struct{ name, sql string }{
			{"ml_latest_metrics_10k_runs", "SELECT run_id, value FROM ml.latest_metrics WHERE `key` = 'acc' ORDER BY value DESC LIMIT 20"},
			{"ml_latest_metrics_10k_runs_join", "SELECT r.name, l.value FROM ml.latest_metrics l JOIN ml.runs r ON r.run_id = l.run_id WHERE l.`key` = 'acc' ORDER BY l.value DESC LIMIT 20"},
		} {
			lat = nil
			for r := 0; r < 4; r++ {
				s := time.Now()
				rows, err := db.Query(q.sql)
				if err != nil {
					b.Fatal(err)
				}
				for rows.Next() {
				}
				rows.Close()
				lat = append(lat, time.Since(s))
			}
			figure("%s: %s over %d runs × 10 points: first %s, then median %s", q.name, q.sql, runs, ms(lat[0]), ms(percentile(lat[1:], 0.5)))
		}
		scoreboardFigures(b, n, db, imp, runs)
		fmt.Println("\n=== ML figures ===")
		for _, f := range figures {
			fmt.Println(f)
		}
	}
}

// scoreboardFigures times the web scoreboard's pages (server time plus transfer, as a
// browser would fetch them) over the 10,000 runs loaded above, each given two params, and
// one more run with 100,000 points of one metric.
func scoreboardFigures(b *testing.B, n *node, db *sql.DB, imp string, runs int) {
	var pb, hb strings.Builder
	for r := 0; r < runs; r++ {
		id := fmt.Sprintf("%032x", r+1)
		fmt.Fprintf(&pb, "%s,lr,%g\n%s,model,%s\n", id, float64(r%100)/1000, id, []string{"gbdt", "rf", "knn"}[r%3])
	}
	long := fmt.Sprintf("%032x", runs+1)
	for s := 0; s < 100_000; s++ {
		fmt.Fprintf(&hb, "%s,val_loss,%f,%d,%d\n", long, math.Sin(float64(s)/3000)+float64(s)/100000, 1700000000000+s, s)
	}
	os.WriteFile(filepath.Join(imp, "params.csv"), []byte(pb.String()), 0o644)
	os.WriteFile(filepath.Join(imp, "history.csv"), []byte(hb.String()), 0o644)
	mustExec(b, db, "INSERT INTO ml.params SELECT * FROM read_csv('file://"+imp+"/params.csv', 'header=false, columns=a VARCHAR(32),b VARCHAR(250),c VARCHAR(8000)')")
	mustExec(b, db, "INSERT INTO ml.metrics SELECT * FROM read_csv('file://"+imp+"/history.csv', 'header=false, columns=a VARCHAR(32),b VARCHAR(250),c DOUBLE,d BIGINT,e BIGINT')")
	mustExec(b, db, fmt.Sprintf("INSERT INTO ml.runs VALUES ('%s', '0', 'long', 'FINISHED', 1700000000000, 1700000100000, 'bench', NULL, 'mlflow-artifacts:/0/%s/artifacts', 'active', NULL)", long, long))
	base := "http://" + n.srv.HTTPAddr()
	for _, p := range []struct{ name, path string }{
		{"scoreboard_runs_page_10k_runs", "/ui/experiments/0"},
		{"scoreboard_runs_sorted_by_metric_10k_runs", "/ui/experiments/0?order=" + url.QueryEscape("metrics.acc DESC")},
		{"scoreboard_runs_filtered_10k_runs", "/ui/experiments/0?order=" + url.QueryEscape("metrics.acc DESC") + "&filter=" + url.QueryEscape("metrics.acc > 0.5 and params.model = 'gbdt'")},
		{"scoreboard_last_page_10k_runs", "/ui/experiments/0?size=250&offset=9750"},
		{"scoreboard_run_page_100k_points", "/ui/runs/" + long},
		{"scoreboard_compare_3_runs_100k_points", "/ui/compare?runs=" + long + "," + fmt.Sprintf("%032x,%032x", 1, 2)},
	} {
		var lat []time.Duration
		size := 0
		for r := 0; r < 4; r++ {
			s := time.Now()
			resp, err := http.Get(base + p.path)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("GET %s: %d %s", p.path, resp.StatusCode, body)
			}
			lat = append(lat, time.Since(s))
			size = len(body)
		}
		figure("%s: GET %s: first %s, then median %s, %d KiB", p.name, p.path, ms(lat[0]), ms(percentile(lat[1:], 0.5)), size/1024)
	}
}
