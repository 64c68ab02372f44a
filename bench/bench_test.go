package bench

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/lakehoused/lakehoused/server"
)

const dbName = "bench"

// node is one in-process daemon.
type node struct {
	srv     *server.Server
	dataDir string
}

// benchDir is a fresh directory for the run: under LAKEHOUSED_BENCH_DIR when set, and then
// kept afterwards. Deleting a run's thousands of files makes the next run slower on ext4
// without a journal (this machine's root filesystem): for minutes after a file is deleted,
// every file creation in its block group scans past the freed inode (find_inode_bit →
// recently_deleted), which costs up to ~1 ms of kernel CPU per created file. Keeping the
// files makes back-to-back runs comparable.
func benchDir(b *testing.B) string {
	root := os.Getenv("LAKEHOUSED_BENCH_DIR")
	if root == "" {
		return b.TempDir()
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		b.Fatal(err)
	}
	dir, err := os.MkdirTemp(root, "run-")
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

func startNode(b *testing.B) *node {
	b.Helper()
	dir := benchDir(b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("LAKEHOUSED_BENCH_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv, err := server.Start(context.Background(), server.Config{
		DataDir: dir, MySQLAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ShutdownGrace: time.Second,
		Version: "bench", Logger: log, RaftAddr: os.Getenv("LAKEHOUSED_BENCH_RAFT"),
	})
	if err != nil {
		b.Fatalf("start node: %v", err)
	}
	n := &node{srv: srv, dataDir: dir}
	b.Cleanup(srv.Shutdown)
	return n
}

func (n *node) open(b *testing.B, db string, maxConns int) *sql.DB {
	b.Helper()
	c := mysql.NewConfig()
	c.User = "root"
	c.Net = "tcp"
	c.Addr = n.srv.MySQLAddr()
	c.DBName = db
	c.AllowNativePasswords = true
	c.ParseTime = true
	c.AllowAllFiles = true
	c.InterpolateParams = true
	d, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		b.Fatal(err)
	}
	d.SetMaxOpenConns(maxConns)
	d.SetMaxIdleConns(maxConns)
	d.SetConnMaxLifetime(0)
	b.Cleanup(func() { d.Close() })
	return d
}

// metrics reads the /metrics counters.
func (n *node) metrics(b *testing.B) map[string]int64 {
	b.Helper()
	resp, err := http.Get("http://" + n.srv.HTTPAddr() + "/metrics")
	if err != nil {
		b.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			out[f[0]] = v
		}
	}
	return out
}

const (
	mConsidered = "lakehoused_scan_files_considered_total"
	mRead       = "lakehoused_scan_files_read_total"
)

func envInt(name string, def int64) int64 {
	if s := os.Getenv(name); s != "" {
		s = strings.ReplaceAll(s, "_", "")
		if v, err := strconv.ParseInt(s, 10, 64); err == nil && v > 0 {
			return v
		}
	}
	return def
}

// resetPeakRSS returns freed memory to the OS and resets VmHWM (Linux: clear_refs 5), so the
// peak after a load is that load's.
func resetPeakRSS() {
	runtime.GC()
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// memAvailable is MemAvailable from /proc/meminfo in bytes, or -1.
func memAvailable() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "MemAvailable:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return -1
}

// vmHWM is the process's peak resident set size in bytes (/proc/self/status VmHWM).
func vmHWM() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return -1
}

var figures []string

// figure prints one result line at once (progress) and keeps it for the summary.
func figure(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	figures = append(figures, s)
	fmt.Printf("FIGURE %s\n", s)
}

func progress(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func rate(n int64, d time.Duration) string {
	r := float64(n) / d.Seconds()
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.0fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

const createCols = `id BIGINT NOT NULL, qty INT, price DOUBLE, amount DECIMAL(12,2), region VARCHAR(16),
	name VARCHAR(32), day DATE, ts DATETIME`

var regions = []string{"eu-west", "eu-north", "us-east", "us-west", "ap-south", "ap-east", "sa-east", "af-south"}

// writeCSV writes rows id 1..n (ascending) with a fixed-seed PRNG, so every run loads the
// same data. Returns the file size.
func writeCSV(path string, n int64) (int64, error) {
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	return writeRows(path, n, func(buf []byte, id int64, r *rand.Rand) []byte {
		buf = strconv.AppendInt(buf, id, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, int64(r.IntN(1_000_000)), 10)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, r.Float64()*1000, 'f', 6, 64)
		buf = append(buf, ',')
		cents := r.Int64N(10_000_000_000) // < 10^10: fits DECIMAL(12,2)
		buf = strconv.AppendInt(buf, cents/100, 10)
		buf = append(buf, '.')
		c := cents % 100
		buf = append(buf, byte('0'+c/10), byte('0'+c%10))
		buf = append(buf, ',')
		buf = append(buf, regions[r.IntN(len(regions))]...)
		buf = append(buf, ',', 'n', '-')
		buf = appendHex16(buf, r.Uint64())
		buf = append(buf, ',')
		t := time.Unix(base+r.Int64N(5*365*86400), 0).UTC()
		buf = t.AppendFormat(buf, "2006-01-02")
		buf = append(buf, ',')
		return t.Add(time.Duration(r.IntN(86400))*time.Second).AppendFormat(buf, "2006-01-02 15:04:05")
	})
}

// writeRows writes a CSV of rows id 1..n, each appended by row without its newline, from
// one fixed-seed PRNG (the same for every file, so every run loads the same data).
// Returns the file size.
func writeRows(path string, n int64, row func(buf []byte, id int64, r *rand.Rand) []byte) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(42, 1))
	var buf []byte
	for id := int64(1); id <= n; id++ {
		buf = append(row(buf[:0], id, r), '\n')
		if _, err := w.Write(buf); err != nil {
			f.Close()
			return 0, err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	return st.Size(), f.Close()
}

// appendHex16 appends h as 16 hex digits, least significant first.
func appendHex16(buf []byte, h uint64) []byte {
	const hexd = "0123456789abcdef"
	for i := 0; i < 16; i++ {
		buf = append(buf, hexd[h&15])
		h >>= 4
	}
	return buf
}

func mustExec(b *testing.B, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, q string, args ...any) sql.Result {
	b.Helper()
	res, err := db.ExecContext(context.Background(), q, args...)
	if err != nil {
		b.Fatalf("%s: %v", q, err)
	}
	return res
}

func loadData(b *testing.B, db *sql.DB, csv, table string) time.Duration {
	b.Helper()
	mysql.RegisterLocalFile(csv)
	resetPeakRSS()
	start := time.Now()
	res := mustExec(b, db, fmt.Sprintf(
		"LOAD DATA LOCAL INFILE '%s' INTO TABLE %s FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n'", csv, table))
	el := time.Since(start)
	if n, err := res.RowsAffected(); err == nil {
		progress("LOAD DATA into %s: %d rows affected", table, n)
	}
	return el
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(p * float64(len(d)-1))
	return d[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// benchParts are the values of LAKEHOUSED_BENCH_ONLY, which runs one part of one benchmark
// alone (for profiling, or to repeat one figure): BenchmarkFoundation's, then
// BenchmarkMaintenance's.
var benchParts = []string{"load", "load-nokey", "insert", "autocompact", "zorder", "coldopen", "s3", "connectors", "ml", "mltrain", "cluster"}

// onlyPart returns LAKEHOUSED_BENCH_ONLY when it names one of the benchmark's own parts, or
// "" when it is unset. When it names another benchmark's part this benchmark is skipped, so
// `-bench .` runs just that part.
func onlyPart(b *testing.B, own ...string) string {
	only := os.Getenv("LAKEHOUSED_BENCH_ONLY")
	switch {
	case only == "" || slices.Contains(own, only):
		return only
	case slices.Contains(benchParts, only):
		b.Skipf("LAKEHOUSED_BENCH_ONLY=%s is a part of another benchmark", only)
	default:
		b.Fatalf("LAKEHOUSED_BENCH_ONLY=%q names no part; parts are: %s", only, strings.Join(benchParts, ", "))
	}
	return ""
}

// BenchmarkFoundation measures the figures of the foundation issue, once (-benchtime 1x).
func BenchmarkFoundation(b *testing.B) {
	rows := envInt("LAKEHOUSED_BENCH_ROWS", 10_000_000)
	fileSize := envInt("LAKEHOUSED_BENCH_TARGET_FILE_SIZE", 8<<20)
	only := onlyPart(b, "load", "load-nokey", "insert")
	noKeyLoad := os.Getenv("LAKEHOUSED_BENCH_SKIP_NOKEY_LOAD") == "" && only == ""
	for i := 0; i < b.N; i++ {
		figures = nil
		foundation(b, rows, fileSize, noKeyLoad, only)
		fmt.Printf("\n==== lakehoused foundation figures (%d rows) ====\n", rows)
		for _, f := range figures {
			fmt.Println(f)
		}
		fmt.Println("====")
	}
}

func foundation(b *testing.B, rows, fileSize int64, noKeyLoad bool, only string) {
	b.StopTimer()
	ctx := context.Background()
	if only == "insert" {
		n := startNode(b)
		mustExec(b, n.open(b, "", 1), "CREATE DATABASE "+dbName)
		insertFigures(b, n, n.open(b, dbName, 8))
		return
	}
	tmp := benchDir(b)
	csv := filepath.Join(tmp, "bench.csv")
	progress("generating %d-row CSV in %s", rows, csv)
	start := time.Now()
	csvBytes, err := writeCSV(csv, rows)
	if err != nil {
		b.Fatal(err)
	}
	progress("CSV: %s in %.1fs", mib(csvBytes), time.Since(start).Seconds())

	n := startNode(b)
	admin := n.open(b, "", 1)
	mustExec(b, admin, "CREATE DATABASE "+dbName)
	db := n.open(b, dbName, 8)

	// 1. Bulk load with a primary key (without, for profiling, under load-nokey).
	key, keyName := ", PRIMARY KEY (id)", "pk"
	if only == "load-nokey" {
		key, keyName = "", "nokey"
	}
	mustExec(b, db, fmt.Sprintf("CREATE TABLE t (%s%s) COMMENT 'delta.targetFileSize=%d'", createCols, key, fileSize))
	progress("LOAD DATA into t (%s, delta.targetFileSize=%d) …", keyName, fileSize)
	b.StartTimer()
	el := loadData(b, db, csv, "t")
	b.StopTimer()
	hwm := vmHWM()
	figure("bulk_load_data_%s: %d rows in %.1fs = %s rows/s (target >= 500k); CSV %s; peak RSS (VmHWM) %s",
		keyName, rows, el.Seconds(), rate(rows, el), mib(csvBytes), mib(hwm))
	b.ReportMetric(float64(rows)/el.Seconds(), "load_rows/s")
	b.ReportMetric(float64(hwm)/(1<<20), "peak_rss_MiB")
	if only == "load" || only == "load-nokey" {
		return
	}

	var nfiles int64
	var fbytes float64 // GMS returns SUM as a float
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), SUM(size_bytes) FROM lake_files('bench.t')").Scan(&nfiles, &fbytes); err != nil {
		b.Fatalf("lake_files: %v", err)
	}
	nbytes := int64(fbytes)
	figure("table_files: %d data files, %s (%d bytes), %.0f B/row", nfiles, mib(nbytes), nbytes, float64(nbytes)/float64(rows))

	var cnt int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&cnt); err != nil || cnt != rows {
		b.Fatalf("SELECT COUNT(*) after load = %d, %v; want %d", cnt, err, rows)
	}

	// 3. Full scan.
	progress("full scan …")
	var sum float64
	start = time.Now()
	if err := db.QueryRowContext(ctx, "SELECT SUM(price) FROM t").Scan(&sum); err != nil {
		b.Fatalf("full scan: %v", err)
	}
	el = time.Since(start)
	figure("full_scan_sum: SELECT SUM(price) over %d rows in %.2fs = %s rows/s", rows, el.Seconds(), rate(rows, el))
	b.ReportMetric(el.Seconds(), "full_scan_s")

	// 4. 1%-selective range on the sort column.
	progress("range query …")
	lo := rows/2 + 1
	hi := lo + rows/100 - 1
	before := n.metrics(b)
	start = time.Now()
	var rcnt int64
	var rsum float64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), SUM(price) FROM t WHERE id BETWEEN ? AND ?", lo, hi).Scan(&rcnt, &rsum); err != nil {
		b.Fatalf("range: %v", err)
	}
	el = time.Since(start)
	after := n.metrics(b)
	considered := after[mConsidered] - before[mConsidered]
	read := after[mRead] - before[mRead]
	pct := 0.0
	if considered > 0 {
		pct = 100 * float64(read) / float64(considered)
	}
	figure("range_1pct: id BETWEEN %d AND %d -> %d rows in %.3fs; files read %d / %d considered = %.1f%% (target <= 5%%)",
		lo, hi, rcnt, el.Seconds(), read, considered, pct)
	if rcnt != rows/100 {
		figure("range_1pct: WRONG COUNT %d, want %d", rcnt, rows/100)
	}
	b.ReportMetric(el.Seconds(), "range_s")
	b.ReportMetric(pct, "range_files_%")

	// 5. Point lookups by primary key.
	progress("point lookups …")
	r := rand.New(rand.NewPCG(7, 7))
	lat := make([]time.Duration, 0, 200)
	scanBefore := n.metrics(b)
	for i := 0; i < 200; i++ {
		id := 1 + r.Int64N(rows)
		var got int64
		var price float64
		s := time.Now()
		if err := db.QueryRowContext(ctx, "SELECT id, price FROM t WHERE id = ?", id).Scan(&got, &price); err != nil {
			b.Fatalf("point lookup %d: %v", id, err)
		}
		lat = append(lat, time.Since(s))
		if got != id {
			b.Fatalf("point lookup %d returned %d", id, got)
		}
		if i == 0 && lat[0] > 30*time.Second {
			figure("point_lookup_pk: first lookup took %.1fs; stopping after 1", lat[0].Seconds())
			break
		}
	}
	scanAfter := n.metrics(b)
	figure("point_lookup_pk: %d lookups p50 %s p99 %s; files read %d / %d considered (%.1f per lookup)",
		len(lat), ms(percentile(lat, .5)), ms(percentile(lat, .99)),
		scanAfter[mRead]-scanBefore[mRead], scanAfter[mConsidered]-scanBefore[mConsidered],
		float64(scanAfter[mRead]-scanBefore[mRead])/float64(len(lat)))
	b.ReportMetric(float64(percentile(lat, .5).Microseconds())/1000, "lookup_p50_ms")

	// The same lookups with every column, and with the key alone: if these cost the same as
	// the two-column lookup, the scan decodes whole files regardless of the projection.
	for _, q := range []struct{ name, cols string }{{"all_columns", "*"}, {"key_only", "id"}} {
		var l []time.Duration
		for i := 0; i < 50; i++ {
			id := 1 + r.Int64N(rows)
			s := time.Now()
			rs, err := db.QueryContext(ctx, "SELECT "+q.cols+" FROM t WHERE id = ?", id)
			if err != nil {
				b.Fatalf("point lookup %d: %v", id, err)
			}
			k := 0
			for rs.Next() {
				k++
			}
			rs.Close()
			l = append(l, time.Since(s))
			if k != 1 {
				b.Fatalf("point lookup %d returned %d rows", id, k)
			}
		}
		figure("point_lookup_pk_%s: SELECT %s … WHERE id = ?: %d lookups p50 %s p99 %s",
			q.name, q.cols, len(l), ms(percentile(l, .5)), ms(percentile(l, .99)))
	}

	insertFigures(b, n, db)

	// 1b. The same load without a key.
	if noKeyLoad {
		// The load stages every row in memory (~2 KB RSS per row); skip the second one rather
		// than push a shared machine into the OOM killer.
		resetPeakRSS()
		if avail := memAvailable(); avail > 0 && avail < hwm+hwm/4 {
			figure("bulk_load_data_nokey: skipped: MemAvailable %s < 1.25 x the first load's peak RSS %s", mib(avail), mib(hwm))
			noKeyLoad = false
		}
	}
	if noKeyLoad {
		mustExec(b, db, fmt.Sprintf("CREATE TABLE t_nokey (%s) COMMENT 'delta.targetFileSize=%d'", createCols, fileSize))
		progress("LOAD DATA into t_nokey (no key) …")
		el = loadData(b, db, csv, "t_nokey")
		figure("bulk_load_data_nokey: %d rows in %.1fs = %s rows/s (target >= 500k); peak RSS (VmHWM) %s",
			rows, el.Seconds(), rate(rows, el), mib(vmHWM()))
		b.ReportMetric(float64(rows)/el.Seconds(), "load_nokey_rows/s")
	}
	// Last, so that the figures above run in a process without a large live index (as for
	// a table that is loaded and then only read).
	keyIndexFigure(b, db, rows)
}

// keyIndexFigure measures what the in-memory primary-key index costs. A bulk load into an
// empty table leaves the index unbuilt (a loaded table may only ever be read); the first
// keyed INSERT after it builds the index from the key column of every file, so that
// statement's latency is the build, and the Go heap it leaves behind (the server runs in
// this process) is the index.
func keyIndexFigure(b *testing.B, db *sql.DB, rows int64) {
	ctx := context.Background()
	heapBefore := heapInUse()
	start := time.Now()
	if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO t (id) VALUES (%d)", rows+1)); err != nil {
		b.Fatalf("first keyed insert: %v", err)
	}
	first := time.Since(start)
	retained := heapInUse() - heapBefore
	start = time.Now()
	if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO t (id) VALUES (%d)", rows+2)); err != nil {
		b.Fatalf("second keyed insert: %v", err)
	}
	next := time.Since(start)
	figure("key_index: %d keys; the first keyed INSERT after the load built the index in %s; the next INSERT %s; Go heap +%s (%d B/key)",
		rows, ms(first), ms(next), mib(retained), retained/max(rows, 1))
	b.ReportMetric(first.Seconds(), "key_index_build_s")
	b.ReportMetric(float64(retained)/float64(max(rows, 1)), "key_index_B/key")
}

// heapInUse is the Go heap after a collection.
func heapInUse() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// insertFigures measures single-row autocommit inserts, 4 clients x 5 s (the figure)
// and 1 client x 3 s, into fresh tables with and without a primary key.
func insertFigures(b *testing.B, n *node, db *sql.DB) {
	ctx := context.Background()
	for _, pk := range []bool{true, false} {
		name, ddl := "ins_nokey", "CREATE TABLE ins_nokey ("+createCols+")"
		if pk {
			name, ddl = "ins_pk", "CREATE TABLE ins_pk ("+createCols+", PRIMARY KEY (id))"
		}
		mustExec(b, db, ddl)
		progress("single-row inserts into %s (4 clients x 5s) …", name)
		p50, p99, total, dur := inserts(b, n, name, 4, 5*time.Second)
		var got int64
		db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+name).Scan(&got)
		var f int64
		db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM lake_files('bench.%s')", name)).Scan(&f)
		figure("insert_autocommit_%s: 4 clients x 5s: %d inserts = %s inserts/s, p50 %s p99 %s (target p50 <= 3ms); table then has %d rows in %d files",
			strings.TrimPrefix(name, "ins_"), total, rate(total, dur), ms(p50), ms(p99), got, f)
		b.ReportMetric(float64(p50.Microseconds())/1000, "insert_"+strings.TrimPrefix(name, "ins_")+"_p50_ms")

		// One client alone: the statement's own latency, without 4 clients sharing 2 cores.
		one := name + "_1"
		mustExec(b, db, strings.Replace(ddl, name, one, 1))
		progress("single-row inserts into %s (1 client x 3s) …", one)
		p50, p99, total, dur = inserts(b, n, one, 1, 3*time.Second)
		figure("insert_autocommit_%s_1client: 1 client x 3s: %d inserts = %s inserts/s, p50 %s p99 %s",
			strings.TrimPrefix(name, "ins_"), total, rate(total, dur), ms(p50), ms(p99))
	}
}

// inserts runs clients goroutines, each on its own connection, inserting single rows with
// autocommit for dur; ids are disjoint per client.
func inserts(b *testing.B, n *node, table string, clients int, dur time.Duration) (p50, p99 time.Duration, total int64, elapsed time.Duration) {
	return insertRun(b, n, table, clients, dur, 0)
}

// insertsN is inserts by count: each client inserts perClient rows.
func insertsN(b *testing.B, n *node, table string, clients int, perClient int64) (p50, p99 time.Duration, total int64, elapsed time.Duration) {
	return insertRun(b, n, table, clients, 0, perClient)
}

// insertRun is inserts (perClient 0: for dur) and insertsN (perClient rows each).
func insertRun(b *testing.B, n *node, table string, clients int, dur time.Duration, perClient int64) (p50, p99 time.Duration, total int64, elapsed time.Duration) {
	b.Helper()
	db := n.open(b, dbName, clients)
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			conn, err := db.Conn(context.Background())
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			var lat []time.Duration
			end := time.Now().Add(dur)
			more := func(i int64) bool {
				if perClient > 0 {
					return i < perClient
				}
				return time.Now().Before(end)
			}
			for i := int64(0); more(i); i++ {
				id := int64(c)*1_000_000_000 + i
				s := time.Now()
				_, err := conn.ExecContext(context.Background(),
					"INSERT INTO "+table+" VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
					id, i, 1.5, "12.34", "eu-west", "n-"+strconv.FormatInt(id, 16), "2024-01-02", "2024-01-02 03:04:05")
				if err != nil {
					errs <- fmt.Errorf("client %d insert %d: %w", c, i, err)
					return
				}
				lat = append(lat, time.Since(s))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	elapsed = time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return percentile(all, .5), percentile(all, .99), int64(len(all)), elapsed
}
