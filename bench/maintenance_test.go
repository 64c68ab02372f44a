package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/compaction"
	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// BenchmarkMaintenance measures the figures of the maintenance issue, once (-benchtime 1x):
// what auto-compaction does to a table fed by single-row INSERTs and to the INSERTs
// themselves, how well Z-order makes min/max statistics prune on two columns, and what
// checkpoints save when a table is opened cold.
func BenchmarkMaintenance(b *testing.B) {
	only := onlyPart(b, "autocompact", "zorder", "coldopen")
	zRows := envInt("LAKEHOUSED_BENCH_ZORDER_ROWS", 10_000_000)
	zFileSize := envInt("LAKEHOUSED_BENCH_ZORDER_FILE_SIZE", zorderFileSize(zRows))
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		figures = nil
		var n *node
		var db *sql.DB
		sqlNode := func() (*node, *sql.DB) {
			if n == nil {
				n = startNode(b)
				mustExec(b, n.open(b, "", 1), "CREATE DATABASE "+dbName)
				db = n.open(b, dbName, 8)
			}
			return n, db
		}
		if only == "" || only == "autocompact" {
			autocompactFigures(b, sqlNode)
		}
		if only == "" || only == "zorder" {
			zorderFigures(b, sqlNode, zRows, zFileSize)
		}
		if only == "" || only == "coldopen" {
			coldOpenFigures(b)
		}
		fmt.Println("\n==== lakehoused maintenance figures ====")
		for _, f := range figures {
			fmt.Println(f)
		}
		fmt.Println("====")
	}
}

// The count of single-row INSERTs, split over 4 clients.
const (
	autocompactInserts = 10_000
	autocompactClients = 4
)

// autocompactFigures inserts the same rows into a table with auto-compaction (the default)
// and into one without, then compares full scans of both with the same rows in one file.
func autocompactFigures(b *testing.B, sqlNode func() (*node, *sql.DB)) {
	n, db := sqlNode()
	mustExec(b, db, "CREATE TABLE ac ("+createCols+")")
	mustExec(b, db, "CREATE TABLE noac ("+createCols+") COMMENT 'delta.autoOptimize.autoCompact=false'")

	progress("%d single-row inserts into ac (auto-compaction on), %d clients …", autocompactInserts, autocompactClients)
	p50, p99, total, el := insertsN(b, n, "ac", autocompactClients, autocompactInserts/autocompactClients)
	files, settled := settleFiles(b, db, "ac", 30*time.Second)
	compactions := queryInt(b, db, "SELECT COUNT(*) FROM lake_history('bench.ac') WHERE operation = 'OPTIMIZE'")
	checkRows(b, db, "ac", total)
	figure("autocompact_inserts: %d INSERTs by %d clients in %.1fs = %s inserts/s, p50 %s p99 %s; %d auto-compactions; "+
		"%d live files %.1fs after the last INSERT (target <= 60)",
		total, autocompactClients, el.Seconds(), rate(total, el), ms(p50), ms(p99), compactions, files, settled.Seconds())
	b.ReportMetric(float64(files), "autocompact_files")

	progress("the same inserts into noac (autoCompact=false) …")
	offP50, offP99, offTotal, offEl := insertsN(b, n, "noac", autocompactClients, autocompactInserts/autocompactClients)
	offFiles := queryInt(b, db, "SELECT COUNT(*) FROM lake_files('bench.noac')")
	checkRows(b, db, "noac", offTotal)
	figure("autocompact_inserts_off: the same into a table with delta.autoOptimize.autoCompact=false: %.1fs = %s inserts/s, p50 %s p99 %s; %d live files",
		offEl.Seconds(), rate(offTotal, offEl), ms(offP50), ms(offP99), offFiles)
	figure("autocompact_inserts_p99_ratio: p99 with auto-compaction / without = %s / %s = %.2f",
		ms(p99), ms(offP99), float64(p99)/float64(offP99))
	b.ReportMetric(float64(p99)/float64(offP99), "autocompact_p99_ratio")

	// The reference: the same rows in one file, written by one statement.
	mustExec(b, db, "CREATE TABLE one ("+createCols+")")
	mustExec(b, db, "INSERT INTO one SELECT * FROM ac")
	oneFiles := queryInt(b, db, "SELECT COUNT(*) FROM lake_files('bench.one')")
	if oneFiles != 1 {
		figure("autocompact_scan: the one-file reference table has %d files", oneFiles)
	}
	progress("full scans …")
	acScan := fullScan(b, db, "ac", total)
	oneScan := fullScan(b, db, "one", total)
	offScan := fullScan(b, db, "noac", offTotal)
	figure("autocompact_scan: SELECT SUM(price), COUNT(*) over %d rows, median of 5 warm runs: auto-compacted (%d files) %s, "+
		"one file %s = %.2fx (target <= 1.5x); autoCompact=false (%d files) %s",
		total, files, ms(acScan), ms(oneScan), float64(acScan)/float64(oneScan), offFiles, ms(offScan))
	b.ReportMetric(float64(acScan)/float64(oneScan), "autocompact_scan_ratio")
}

// settleFiles waits for auto-compaction to finish after the last INSERT: it polls the
// table's live file count until it has not changed for twice the idle delay (the idle
// compaction runs one idle delay after the last commit, and a compaction of 50 small files
// takes milliseconds), or until limit. Returns the count and how long the wait took.
func settleFiles(b *testing.B, db *sql.DB, table string, limit time.Duration) (int64, time.Duration) {
	b.Helper()
	q := fmt.Sprintf("SELECT COUNT(*) FROM lake_files('%s.%s')", dbName, table)
	start := time.Now()
	last, since := queryInt(b, db, q), time.Now()
	for time.Since(since) < 2*compaction.DefaultIdleDelay && time.Since(start) < limit {
		time.Sleep(100 * time.Millisecond)
		if f := queryInt(b, db, q); f != last {
			last, since = f, time.Now()
		}
	}
	return last, time.Since(start)
}

// fullScan is the median of 5 full scans after one to warm the caches.
func fullScan(b *testing.B, db *sql.DB, table string, rows int64) time.Duration {
	b.Helper()
	var lat []time.Duration
	for i := 0; i < 6; i++ {
		var sum float64
		var cnt int64
		s := time.Now()
		if err := db.QueryRowContext(context.Background(), "SELECT SUM(price), COUNT(*) FROM "+table).Scan(&sum, &cnt); err != nil {
			b.Fatalf("full scan of %s: %v", table, err)
		}
		if i > 0 {
			lat = append(lat, time.Since(s))
		}
		if cnt != rows {
			b.Fatalf("full scan of %s counted %d rows, want %d", table, cnt, rows)
		}
	}
	return percentile(lat, .5)
}

func checkRows(b *testing.B, db *sql.DB, table string, want int64) {
	b.Helper()
	if got := queryInt(b, db, "SELECT COUNT(*) FROM "+table); got != want {
		b.Fatalf("%s has %d rows, want %d", table, got, want)
	}
}

func queryInt(b *testing.B, db *sql.DB, q string) int64 {
	b.Helper()
	var v int64
	if err := db.QueryRowContext(context.Background(), q).Scan(&v); err != nil {
		b.Fatalf("%s: %v", q, err)
	}
	return v
}

// The Z-order table's columns: x uniform in [0, zX), y uniform in [0, 1), independent of
// each other and of id, so a table loaded in id order has every x and y in every file.
const (
	zCols = "id BIGINT NOT NULL, x BIGINT, y DOUBLE, pad VARCHAR(16)"
	zX    = 1_000_000_000
)

// zorderFileSize is the default delta.targetFileSize of the Z-order table: 1 MiB at 10M rows
// (~25 B/row, so lake_zorder writes a few hundred files), scaled with the row count so that
// smaller runs get as many. Pruning by Z-order depends on the file count: with F files each
// file spans about 1/sqrt(F) of each column, so a 1% range overlaps about 1/sqrt(F) + 1% of
// them. (Before Z-order the count does not matter, as every file spans all of x and y; LOAD
// DATA writes at least one 64Ki-row batch per file, so at small row counts the loaded table
// has few files whatever the target.)
func zorderFileSize(rows int64) int64 {
	return max(16<<10, (1<<20)*rows/10_000_000)
}

// writeZOrderCSV writes the Z-order table's rows in id order.
func writeZOrderCSV(path string, n int64) (int64, error) {
	return writeRows(path, n, func(buf []byte, id int64, r *rand.Rand) []byte {
		buf = strconv.AppendInt(buf, id, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, r.Int64N(zX), 10)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, r.Float64(), 'f', 9, 64)
		buf = append(buf, ',')
		return appendHex16(buf, r.Uint64())
	})
}

// zorderFigures loads the table, measures how many files 1% ranges on x and on y read,
// Z-orders it by (x, y) and measures again with the same ranges.
func zorderFigures(b *testing.B, sqlNode func() (*node, *sql.DB), rows, fileSize int64) {
	n, db := sqlNode()
	csv := filepath.Join(benchDir(b), "zorder.csv")
	progress("generating %d-row Z-order CSV in %s", rows, csv)
	if _, err := writeZOrderCSV(csv, rows); err != nil {
		b.Fatal(err)
	}
	mustExec(b, db, fmt.Sprintf("CREATE TABLE zt (%s) COMMENT 'delta.targetFileSize=%d;delta.autoOptimize.autoCompact=false'", zCols, fileSize))
	progress("LOAD DATA into zt (delta.targetFileSize=%d) …", fileSize)
	el := loadData(b, db, csv, "zt")
	os.Remove(csv) // hundreds of MB at the default row count; nothing reads it again
	checkRows(b, db, "zt", rows)
	files := queryInt(b, db, "SELECT COUNT(*) FROM lake_files('bench.zt')")
	var fbytes float64 // GMS returns SUM as a float
	if err := db.QueryRowContext(context.Background(), "SELECT SUM(size_bytes) FROM lake_files('bench.zt')").Scan(&fbytes); err != nil {
		b.Fatalf("lake_files: %v", err)
	}
	bytes := int64(fbytes)
	figure("zorder_table: %d rows (x, y uniform and independent) loaded in id order in %.1fs: %d files, %s, %s per file (delta.targetFileSize=%d)",
		rows, el.Seconds(), files, mib(bytes), kib(bytes/max(files, 1)), fileSize)

	before := pruning(b, n, db, rows)
	figure("zorder_pruning_before: %s", before)

	progress("CALL lake_zorder('bench.zt', 'x,y') …")
	start := time.Now()
	var r optimizeResult
	if err := db.QueryRowContext(context.Background(), "CALL lake_zorder('bench.zt', 'x,y')").Scan(
		&r.filesRemoved, &r.filesAdded, &r.bytesRemoved, &r.bytesAdded, &r.partitions, &r.minSize, &r.p50Size, &r.maxSize, &r.version); err != nil {
		b.Fatalf("lake_zorder: %v", err)
	}
	el = time.Since(start)
	after := queryInt(b, db, "SELECT COUNT(*) FROM lake_files('bench.zt')")
	figure("zorder_rewrite: lake_zorder(x,y) of %d rows in %.1fs = %s rows/s: %d files -> %d files (removed %d, added %d; sizes min %s p50 %s max %s)",
		rows, el.Seconds(), rate(rows, el), files, after, r.filesRemoved, r.filesAdded, kib(r.minSize), kib(r.p50Size), kib(r.maxSize))
	b.ReportMetric(el.Seconds(), "zorder_s")

	z := pruning(b, n, db, rows)
	figure("zorder_pruning: after lake_zorder: %s (target: engine reads <= 15%% on each)", z)
	for _, c := range []int{0, 1} {
		if z.count[c] != before.count[c] {
			figure("zorder_pruning: WRONG COUNT on %s: %d rows in the ranges after Z-order, %d before", z.col[c], z.count[c], before.count[c])
		}
	}
	b.ReportMetric(z.pct(0), "zorder_x_files_%")
	b.ReportMetric(z.pct(1), "zorder_y_files_%")
	b.ReportMetric(z.statsPct(0), "zorder_x_overlap_%")
	b.ReportMetric(z.statsPct(1), "zorder_y_overlap_%")
}

// optimizeResult is the row of lake_optimize and lake_zorder.
type optimizeResult struct {
	filesRemoved, filesAdded, bytesRemoved, bytesAdded, partitions, minSize, p50Size, maxSize int64
	version                                                                                   sql.NullInt64
}

func kib(n int64) string { return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10)) }

// zorderRanges is how many random 1% ranges pruning queries per column.
const zorderRanges = 10

// pruneResult is what the 1% range queries on x and on y read, two ways: the files the
// engine's scans read and considered (/metrics), and the files whose min/max statistics
// (lake_files) overlap the range, which is what pruning by statistics can at best read.
// The two differ while the engine prunes by statistics only for primary-key predicates.
type pruneResult struct {
	col              [2]string
	read, considered [2]int64
	overlap, files   [2]int64
	count            [2]int64 // rows in all ranges together, to check Z-order changed no answer
	time             [2]time.Duration
}

func (p pruneResult) pct(c int) float64 {
	return 100 * float64(p.read[c]) / float64(max(p.considered[c], 1))
}

func (p pruneResult) statsPct(c int) float64 {
	return 100 * float64(p.overlap[c]) / float64(max(p.files[c], 1))
}

func (p pruneResult) String() string {
	var parts []string
	for c := range p.col {
		parts = append(parts, fmt.Sprintf("%s: engine read %.1f%% of files (%d / %d considered), %s per query; min/max overlap %.1f%% (%d / %d)",
			p.col[c], p.pct(c), p.read[c], p.considered[c], ms(p.time[c]/zorderRanges), p.statsPct(c), p.overlap[c], p.files[c]))
	}
	return fmt.Sprintf("%d random 1%% ranges per column; %s", zorderRanges, strings.Join(parts, "; "))
}

// pruning runs SELECT COUNT(*) over zorderRanges random 1% ranges of x and of y and sums the
// files the scans read and considered (/metrics counter deltas), and the files whose min/max
// overlap each range. The ranges come from a fixed seed, so the runs before and after Z-order
// ask the same questions.
func pruning(b *testing.B, n *node, db *sql.DB, rows int64) pruneResult {
	b.Helper()
	ctx := context.Background()
	boxes := fileBoxes(b, db, "zt")
	r := rand.New(rand.NewPCG(3, 3))
	res := pruneResult{col: [2]string{"x", "y"}}
	for i := 0; i < zorderRanges; i++ {
		xlo := float64(r.Int64N(zX - zX/100))
		ylo := r.Float64() * 0.99
		for c, bounds := range [][2]float64{{xlo, xlo + zX/100 - 1}, {ylo, ylo + 0.01}} {
			q := fmt.Sprintf("SELECT COUNT(*) FROM zt WHERE x BETWEEN %d AND %d", int64(bounds[0]), int64(bounds[1]))
			if c == 1 {
				// Float literals (%e): a literal like 0.25 is a DECIMAL in MySQL, and comparing
				// a DOUBLE column with it converts every row (20x slower).
				q = fmt.Sprintf("SELECT COUNT(*) FROM zt WHERE y BETWEEN %.17e AND %.17e", bounds[0], bounds[1])
			}
			m := n.metrics(b)
			s := time.Now()
			var cnt int64
			if err := db.QueryRowContext(ctx, q).Scan(&cnt); err != nil {
				b.Fatalf("%s: %v", q, err)
			}
			res.time[c] += time.Since(s)
			m2 := n.metrics(b)
			res.read[c] += m2[mRead] - m[mRead]
			res.considered[c] += m2[mConsidered] - m[mConsidered]
			res.count[c] += cnt
			for _, box := range boxes {
				if box.min[c] <= bounds[1] && box.max[c] >= bounds[0] {
					res.overlap[c]++
				}
			}
			res.files[c] += int64(len(boxes))
		}
	}
	// Each range holds about 1% of the rows; far off means the query, not pruning, is wrong.
	for c := range res.col {
		if want := float64(rows) / 100 * zorderRanges; float64(res.count[c]) < want/2 || float64(res.count[c]) > want*2 {
			b.Fatalf("1%% ranges on %s counted %d rows, want about %.0f", res.col[c], res.count[c], want)
		}
	}
	return res
}

// fileBox is a file's min/max of (x, y); a file without statistics spans everything.
type fileBox struct{ min, max [2]float64 }

func fileBoxes(b *testing.B, db *sql.DB, table string) []fileBox {
	b.Helper()
	rs, err := db.QueryContext(context.Background(), fmt.Sprintf("SELECT min_values, max_values FROM lake_files('%s.%s')", dbName, table))
	if err != nil {
		b.Fatalf("lake_files: %v", err)
	}
	defer rs.Close()
	var out []fileBox
	for rs.Next() {
		var lo, hi []byte
		if err := rs.Scan(&lo, &hi); err != nil {
			b.Fatalf("lake_files: %v", err)
		}
		type xy struct{ X, Y *float64 }
		var mn, mx xy // left nil when the stats are missing or do not parse: no pruning
		json.Unmarshal(lo, &mn)
		json.Unmarshal(hi, &mx)
		box := fileBox{min: [2]float64{math.Inf(-1), math.Inf(-1)}, max: [2]float64{math.Inf(1), math.Inf(1)}}
		for c, v := range [2][2]*float64{{mn.X, mx.X}, {mn.Y, mx.Y}} {
			if v[0] != nil && v[1] != nil {
				box.min[c], box.max[c] = *v[0], *v[1]
			}
		}
		out = append(out, box)
	}
	if err := rs.Err(); err != nil {
		b.Fatalf("lake_files: %v", err)
	}
	return out
}

// coldOpenCommits is the log length for the cold-open figure.
const coldOpenCommits = 1000

// coldOpenFigures writes a log of 1,000 commits of one small add each through txlog (no SQL,
// no data files: only the log matters), with a checkpoint every 10 commits and without any,
// and opens each cold (a new txlog.Log, so nothing of the table is in memory; the OS page
// cache is warm, as it is on a server that reopens a table it wrote).
func coldOpenFigures(b *testing.B) {
	ctx := context.Background()
	const opens = 15
	var median [2]time.Duration
	var logFiles [2]int
	for i, interval := range []int64{10, 1_000_000} {
		dir := filepath.Join(benchDir(b), fmt.Sprintf("coldopen-%d", interval))
		store, err := storage.NewLocal(dir)
		if err != nil {
			b.Fatal(err)
		}
		c := txlog.NewStorageCommitter()
		c.CheckpointInterval = interval
		c.SyncCheckpoints = true // the checkpoints exist when the commits have returned
		progress("cold_open: %d commits, checkpoint interval %d …", coldOpenCommits, interval)
		log := txlog.NewLog(store)
		if _, err := c.Commit(ctx, log, -1, coldOpenCreate()); err != nil {
			b.Fatalf("create: %v", err)
		}
		for v := int64(0); v < coldOpenCommits; v++ {
			if _, err := c.Commit(ctx, log, v, []txlog.Action{coldOpenAdd(v)}); err != nil {
				b.Fatalf("commit %d: %v", v+1, err)
			}
		}
		c.Wait()
		entries, _ := os.ReadDir(filepath.Join(dir, "_delta_log"))
		logFiles[i] = len(entries)
		lat := make([]time.Duration, 0, opens)
		for k := 0; k < opens; k++ {
			s := time.Now()
			snap, err := txlog.NewLog(store).Snapshot(ctx, -1)
			lat = append(lat, time.Since(s))
			if err != nil || snap.Version != coldOpenCommits || len(snap.Files) != coldOpenCommits {
				b.Fatalf("cold open: %v", err)
			}
		}
		median[i] = percentile(lat, .5)
	}
	figure("cold_open: a table of %d one-file commits opened cold (new txlog.Log, latest snapshot), median of %d: "+
		"checkpoint every 10 commits %s (%d files in _delta_log), no checkpoint %s (%d files) = %.1fx faster with checkpoints",
		coldOpenCommits, opens, ms(median[0]), logFiles[0], ms(median[1]), logFiles[1], float64(median[1])/float64(median[0]))
	b.ReportMetric(float64(median[0].Microseconds())/1000, "cold_open_checkpointed_ms")
	b.ReportMetric(float64(median[1].Microseconds())/1000, "cold_open_json_ms")
}

func coldOpenCreate() []txlog.Action {
	return []txlog.Action{
		{Protocol: &txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		{MetaData: &txlog.Metadata{
			ID: "00000000-0000-4000-8000-000000000001", Format: txlog.Format{Provider: "parquet"},
			SchemaString:     `{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}}]}`,
			PartitionColumns: []string{}, Configuration: map[string]string{},
		}},
	}
}

// coldOpenAdd is the add of commit v+1: one file of 100 rows with statistics, like a small
// INSERT's.
func coldOpenAdd(v int64) txlog.Action {
	return txlog.Action{Add: &txlog.Add{
		Path: fmt.Sprintf("part-%05d.parquet", v), PartitionValues: map[string]string{}, Size: 4096,
		ModificationTime: 1700000000000 + v, DataChange: true,
		Stats: fmt.Sprintf(`{"numRecords":100,"minValues":{"id":%d},"maxValues":{"id":%d},"nullCount":{"id":0}}`, v*100+1, v*100+100),
	}}
}
