package system_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// optimizeRow is one row of lake_optimize / lake_zorder.
type optimizeRow struct {
	removed, added, bytesRemoved, bytesAdded, partitions, minSize, p50, maxSize int64
	version                                                                     sql.NullInt64
}

func callOptimize(t *testing.T, c *sql.Conn, q string, args ...any) optimizeRow {
	t.Helper()
	var r optimizeRow
	if err := c.QueryRowContext(context.Background(), q, args...).Scan(&r.removed, &r.added, &r.bytesRemoved, &r.bytesAdded,
		&r.partitions, &r.minSize, &r.p50, &r.maxSize, &r.version); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

func queryInt(t *testing.T, c *sql.Conn, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := c.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func queryString(t *testing.T, c *sql.Conn, q string, args ...any) string {
	t.Helper()
	var s sql.NullString
	if err := c.QueryRowContext(context.Background(), q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

func TestOptimizeAndZOrderOverSQL(t *testing.T) {
	n := startNode(t, "")
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE m")
	mustExec(t, c, "USE m")
	// Auto-compaction off: the test counts files.
	mustExec(t, c, "CREATE TABLE ev (id INT PRIMARY KEY, region VARCHAR(8), v INT, note JSON) COMMENT 'partition_by=region;delta.autoOptimize.autoCompact=false'")
	for i := 0; i < 6; i++ {
		region := []string{"eu", "us"}[i%2]
		mustExec(t, c, fmt.Sprintf("INSERT INTO ev VALUES (%d, '%s', %d, NULL), (%d, '%s', %d, NULL)", 2*i, region, i, 2*i+1, region, 10*i))
	}
	sumBefore := queryInt(t, c, "SELECT SUM(v) + COUNT(*) FROM ev")
	if got := queryInt(t, c, "SELECT COUNT(*) FROM lake_files('m.ev')"); got != 6 {
		t.Fatalf("%d files before", got)
	}

	r := callOptimize(t, c, "CALL lake_optimize('m.ev', 'region = ''eu''')")
	if r.removed != 3 || r.added != 1 || r.partitions != 1 || !r.version.Valid || r.bytesAdded <= 0 || r.minSize <= 0 || r.p50 < r.minSize || r.maxSize < r.p50 {
		t.Fatalf("lake_optimize with predicate: %+v", r)
	}
	perRegion := func() string {
		rows, err := c.QueryContext(context.Background(), "SELECT JSON_UNQUOTE(JSON_EXTRACT(partition_values, '$.region')) AS r, COUNT(*) FROM lake_files('m.ev') GROUP BY r ORDER BY r")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var reg string
			var cnt int
			_ = rows.Scan(&reg, &cnt)
			out = append(out, fmt.Sprintf("%s=%d", reg, cnt))
		}
		return strings.Join(out, " ")
	}
	if got := perRegion(); got != "eu=1 us=3" {
		t.Fatalf("files per region after optimizing eu: %s", got)
	}
	if op := queryString(t, c, "SELECT operation FROM lake_history('m.ev') ORDER BY version DESC LIMIT 1"); op != "OPTIMIZE" {
		t.Fatalf("last operation %q", op)
	}
	if p := queryString(t, c, "SELECT JSON_EXTRACT(operation_parameters, '$.predicate') FROM lake_history('m.ev') ORDER BY version DESC LIMIT 1"); !strings.Contains(p, "region") {
		t.Fatalf("predicate not recorded: %s", p)
	}

	r = callOptimize(t, c, "CALL lake_optimize('m.ev')")
	if r.removed != 3 || r.added != 1 || r.partitions != 1 {
		t.Fatalf("lake_optimize of the rest: %+v", r)
	}
	r = callOptimize(t, c, "CALL lake_optimize('m.ev')")
	if r.removed != 0 || r.version.Valid {
		t.Fatalf("a second lake_optimize did something: %+v", r)
	}
	r = callOptimize(t, c, "CALL lake_zorder('m.ev', 'v, id')")
	if r.removed != 2 || r.added != 2 {
		t.Fatalf("lake_zorder: %+v", r)
	}
	if got := queryInt(t, c, "SELECT SUM(v) + COUNT(*) FROM ev"); got != sumBefore {
		t.Fatalf("rows changed by maintenance: %d, was %d", got, sumBefore)
	}

	// A transaction that read the table before a compaction still commits its UPDATE: the
	// rewrite is redone on the compacted files (no data changed in between).
	for i := 100; i < 106; i++ {
		mustExec(t, c, fmt.Sprintf("INSERT INTO ev VALUES (%d, 'eu', 1, NULL)", i))
	}
	tx := n.conn("m")
	mustExec(t, tx, "START TRANSACTION")
	if got := queryInt(t, tx, "SELECT v FROM ev WHERE id = 101"); got != 1 {
		t.Fatalf("v = %d", got)
	}
	mustExec(t, tx, "UPDATE ev SET v = 42 WHERE id = 101")
	r = callOptimize(t, c, "CALL lake_optimize('m.ev', 'region = ''eu''')")
	if r.removed < 6 {
		t.Fatalf("optimize under the open transaction: %+v", r)
	}
	mustExec(t, tx, "COMMIT")
	if got := queryInt(t, c, "SELECT v FROM ev WHERE id = 101"); got != 42 {
		t.Fatalf("update after rebase: v = %d", got)
	}
	if got := queryInt(t, c, "SELECT COUNT(*) FROM ev"); got != 18 {
		t.Fatalf("rows after rebased update: %d", got)
	}

	// Properties.
	mustExec(t, c, "CALL lake_set_property('m.ev', 'delta.targetFileSize', '1048576')")
	if got := queryString(t, c, "SELECT CONCAT(value, '/', source) FROM lake_properties('m.ev') WHERE `key` = 'delta.targetFileSize'"); got != "1048576/table" {
		t.Fatalf("targetFileSize property: %q", got)
	}
	if got := queryString(t, c, "SELECT CONCAT(value, '/', source) FROM lake_properties('m.ev') WHERE `key` = 'delta.autoOptimize.autoCompact'"); got != "false/table" {
		t.Fatalf("autoCompact set at CREATE TABLE: %q", got)
	}
	if got := queryString(t, c, "SELECT CONCAT(value, '/', source) FROM lake_properties('m.ev') WHERE `key` = 'delta.enableExpiredLogCleanup'"); got != "true/default" {
		t.Fatalf("enableExpiredLogCleanup default: %q", got)
	}
	mustExec(t, c, "CALL lake_set_property('m.ev', 'delta.targetFileSize', NULL)")
	if got := queryString(t, c, "SELECT source FROM lake_properties('m.ev') WHERE `key` = 'delta.targetFileSize'"); got != "default" {
		t.Fatalf("targetFileSize after unset: %q", got)
	}

	// Jobs: every call above is listed, finished.
	resp, err := http.Get("http://" + n.srv.HTTPAddr() + "/api/jobs")
	if err != nil {
		t.Fatal(err)
	}
	var jobs struct {
		Jobs []struct {
			Kind, Table, State string
			FilesDone          int64 `json:"files_done"`
		}
	}
	_ = json.NewDecoder(resp.Body).Decode(&jobs)
	resp.Body.Close()
	kinds := map[string]int{}
	for _, j := range jobs.Jobs {
		if j.Table == "m.ev" && j.State == "done" {
			kinds[j.Kind]++
		}
	}
	if kinds["optimize"] < 4 || kinds["zorder"] != 1 {
		t.Fatalf("/api/jobs: %+v", jobs)
	}
}

func TestVacuumOverSQL(t *testing.T) {
	n := startNode(t, "")
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE m")
	mustExec(t, c, "USE m")
	mustExec(t, c, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	for i := 0; i < 5; i++ {
		mustExec(t, c, fmt.Sprintf("INSERT INTO t VALUES (%d, %d)", i, i))
	}
	callOptimize(t, c, "CALL lake_optimize('m.t')")
	vBefore := queryInt(t, c, "SELECT MAX(version) FROM lake_history('m.t')")

	vacuum := func(q string) (files, bytes int64, dry bool, version sql.NullInt64) {
		t.Helper()
		if err := c.QueryRowContext(context.Background(), q).Scan(&files, &bytes, &dry, &version); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return
	}
	// Inside the default week nothing is old enough.
	if f, _, _, v := vacuum("CALL lake_vacuum('m.t')"); f != 0 || !v.Valid {
		t.Fatalf("default vacuum deleted %d files", f)
	}
	if _, err := c.ExecContext(context.Background(), "CALL lake_vacuum('m.t', 0)"); errCode(err) != 1210 || !strings.Contains(err.Error(), "lake_vacuum_retention_check") {
		t.Fatalf("retention 0 without turning the check off: %v", err)
	}
	if _, err := c.ExecContext(context.Background(), "CALL lake_vacuum('m.t', -1)"); errCode(err) != 1210 || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("negative retention: %v", err)
	}
	if _, err := c.ExecContext(context.Background(), "CALL lake_vacuum('m.t', 200, 'SOMETIMES')"); errCode(err) != 1210 {
		t.Fatalf("unknown mode: %v", err)
	}
	mustExec(t, c, "SET lake_vacuum_retention_check = OFF")
	f, b, dry, v := vacuum("CALL lake_vacuum('m.t', 0, 'DRY RUN')")
	if f != 5 || b <= 0 || !dry || v.Valid {
		t.Fatalf("dry run: %d files %d bytes dry=%v version=%v", f, b, dry, v)
	}
	if got := queryInt(t, c, "SELECT MAX(version) FROM lake_history('m.t')"); got != vBefore+1 {
		t.Fatalf("dry run changed the log: version %d", got)
	}
	f2, b2, _, v := vacuum("CALL lake_vacuum('m.t', 0)")
	if f2 != f || b2 != b || !v.Valid {
		t.Fatalf("vacuum: %d files %d bytes (dry run said %d, %d)", f2, b2, f, b)
	}
	if got := queryInt(t, c, "SELECT SUM(v) FROM t"); got != 10 {
		t.Fatalf("rows after vacuum: sum %d", got)
	}
	if op := queryString(t, c, "SELECT operation FROM lake_history('m.t') ORDER BY version DESC LIMIT 1"); op != "VACUUM END" {
		t.Fatalf("last operation %q", op)
	}
	// Time travel to a version whose files were vacuumed fails with a clear error, and the
	// connection stays usable.
	_, err := c.ExecContext(context.Background(), "SELECT * FROM t AS OF 2")
	if err == nil || !strings.Contains(err.Error(), "part-") {
		t.Fatalf("reading a vacuumed version: %v", err)
	}
	if got := queryInt(t, c, "SELECT COUNT(*) FROM t"); got != 5 {
		t.Fatalf("count after a failed read: %d", got)
	}
	// FULL removes an old orphan; a fresh one stays.
	dir := filepath.Join(n.dir, "m", "t")
	old := filepath.Join(dir, "part-orphan-old.parquet")
	fresh := filepath.Join(dir, "part-orphan-new.parquet")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-48 * time.Hour)
	_ = os.Chtimes(old, past, past)
	if f, _, _, _ := vacuum("CALL lake_vacuum('m.t', 24)"); f != 0 {
		t.Fatalf("vacuum without FULL deleted %d files", f)
	}
	if f, _, _, _ := vacuum("CALL lake_vacuum('m.t', 24, 'FULL')"); f != 1 {
		t.Fatalf("FULL deleted %d files, want the old orphan", f)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatal("old orphan still there")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatal("fresh orphan deleted")
	}

	var cv, cd, ck, earliest int64
	if err := c.QueryRowContext(context.Background(), "CALL lake_checkpoint('m.t')").Scan(&cv, &cd, &ck, &earliest); err != nil {
		t.Fatal(err)
	}
	if cv != queryInt(t, c, "SELECT MAX(version) FROM lake_history('m.t')") {
		t.Fatalf("checkpoint version %d", cv)
	}
	if _, err := os.Stat(filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.checkpoint.parquet", cv))); err != nil {
		t.Fatalf("checkpoint file: %v", err)
	}
}

func TestMaintenanceBadInput(t *testing.T) {
	n := startNode(t, "")
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE m")
	mustExec(t, c, "USE m")
	mustExec(t, c, "CREATE TABLE t (id INT PRIMARY KEY, v INT, doc BLOB, p VARCHAR(4)) COMMENT 'partition_by=p'")
	mustExec(t, c, "INSERT INTO t VALUES (1, 1, 'x', 'a'), (2, 2, NULL, 'b')")
	version := func() int64 { return queryInt(t, c, "SELECT MAX(version) FROM lake_history('m.t')") }
	v0 := version()
	for _, tc := range []struct {
		q    string
		code uint16
		want string
	}{
		{"CALL lake_optimize('m.nope')", 1146, "nope"},
		{"CALL lake_vacuum('nodb.t')", 1049, "nodb"},
		{"CALL lake_zorder('m.t', 'nope')", 1210, `"nope" does not exist`},
		{"CALL lake_zorder('m.t', 'doc')", 1210, "no order"},
		{"CALL lake_zorder('m.t', 'p')", 1210, "partition column"},
		{"CALL lake_zorder('m.t', '')", 1210, "at least one column"},
		{"CALL lake_optimize('m.t', 'v > 1')", 1210, "only the partition columns"},
		{"CALL lake_optimize('m.t', 'p = ')", 1210, "partition predicate"},
		{"CALL lake_optimize('m.t', 'p IN (SELECT p FROM m.t)')", 1210, "subqueries are not allowed"},
		{"CALL lake_optimize('m.t', 'p = ''a'') OR (1 = 1')", 1210, "partition predicate"},
		{"CALL lake_optimize('m.t', 'p = ''a'' ORDER BY 1')", 1210, "single boolean expression"},
		{"CALL lake_optimize('m.t', 'x.p = ''a''')", 1210, "not a partition column"},
		{"CALL lake_vacuum('m.t', 'soon')", 1210, "not a number"},
		{"CALL lake_set_property('m.t', 'delta.appendOnly', 'true')", 1210, "not supported"},
		{"CALL lake_set_property('m.t', 'delta.targetFileSize', '-5')", 1210, "invalid value"},
		{"CALL lake_set_property('m.t', 'lakehoused.primaryKey', 'v')", 1210, "managed by lakehoused"},
	} {
		_, err := c.ExecContext(context.Background(), tc.q)
		if err == nil || errCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want error %d mentioning %q", tc.q, err, tc.code, tc.want)
		}
	}
	if v := version(); v != v0 {
		t.Fatalf("refused maintenance committed: version %d, was %d", v, v0)
	}
	// A table attached READ ONLY takes no maintenance and no writes.
	loc := "file://" + filepath.Join(n.dir, "m", "t")
	mustExec(t, c, "CALL lake_attach('m.ro', ?, 'READ ONLY')", loc)
	for _, q := range []string{
		"CALL lake_optimize('m.ro')", "CALL lake_zorder('m.ro', 'v')", "CALL lake_vacuum('m.ro')",
		"CALL lake_checkpoint('m.ro')", "CALL lake_set_property('m.ro', 'delta.targetFileSize', '1000')",
		"INSERT INTO ro VALUES (3, 3, NULL, 'c')", "UPDATE ro SET v = 0", "DELETE FROM ro WHERE id = 1", "ALTER TABLE ro ADD COLUMN x INT",
	} {
		_, err := c.ExecContext(context.Background(), q)
		if errCode(err) != 1036 || !strings.Contains(err.Error(), "read only") {
			t.Errorf("%s on a READ ONLY table: %v, want 1036", q, err)
		}
	}
	if got := queryInt(t, c, "SELECT COUNT(*) FROM ro"); got != 2 {
		t.Fatalf("read-only table reads %d rows", got)
	}
	if v := version(); v != v0 {
		t.Fatalf("writes to the READ ONLY attachment committed: version %d", v)
	}
}

// TestProgressInProcessList watches SHOW PROCESSLIST while a ZORDER runs.
func TestProgressInProcessList(t *testing.T) {
	n := startNode(t, "")
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE m")
	mustExec(t, c, "USE m")
	mustExec(t, c, "CREATE TABLE big (id BIGINT, a BIGINT, b DOUBLE)")
	seqTable(t, c, "m.seq", 20000)
	for i := 0; i < 40; i++ {
		mustExec(t, c, fmt.Sprintf("INSERT INTO big SELECT %d * 20000 + n, n * 7919 %% 100003, RAND() FROM m.seq", i))
	}
	watcher := n.conn("")
	done := make(chan error, 1)
	go func() {
		_, err := c.ExecContext(context.Background(), "CALL lake_zorder('m.big', 'a,b')")
		done <- err
	}()
	seen := ""
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if seen == "" {
				t.Fatal("SHOW PROCESSLIST never showed the ZORDER's progress")
			}
			t.Logf("seen: %s", seen)
			return
		default:
		}
		rows, err := watcher.QueryContext(context.Background(), "SHOW PROCESSLIST")
		if err != nil {
			t.Fatal(err)
		}
		res, err := scanResult(rows)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.rows {
			if info := fmtVal(r[len(r)-1]); strings.Contains(info, "zorder progress:") {
				seen = info
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMaintenanceUnderLoad runs four inserting clients, one updating client, repeated
// OPTIMIZE and auto-compaction together, then checks that every acknowledged row is there
// exactly once, that no acknowledged update is lost, and that every OPTIMIZE commit
// changed no data.
func TestMaintenanceUnderLoad(t *testing.T) {
	d := 60 * time.Second
	if s := os.Getenv("LAKEHOUSED_SOAK"); s != "" {
		if v, err := time.ParseDuration(s); err == nil {
			d = v
		}
	}
	if testing.Short() {
		d = 5 * time.Second
	}
	n := startNode(t, "")
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE m")
	mustExec(t, c, "USE m")
	mustExec(t, c, "CREATE TABLE t (id BIGINT PRIMARY KEY, writer INT, n INT)")
	const counters = 20
	for i := 0; i < counters; i++ {
		mustExec(t, c, fmt.Sprintf("INSERT INTO t VALUES (%d, -1, 0)", -1-i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	acked := map[int64]bool{}
	updates := make([]int64, counters)
	var wg sync.WaitGroup
	var insertErrs, updateErrs, optimizeErrs, optimizeRuns int
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			db := n.db("m")
			for i := int64(0); ctx.Err() == nil; i++ {
				id := int64(w)<<40 | i
				if _, err := db.ExecContext(context.Background(), "INSERT INTO t VALUES (?, ?, 0)", id, w); err != nil {
					mu.Lock()
					insertErrs++
					mu.Unlock()
					continue
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		}(w)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		db := n.db("m")
		for i := 0; ctx.Err() == nil; i++ {
			k := i % counters
			_, err := db.ExecContext(context.Background(), "UPDATE t SET n = n + 1 WHERE id = ?", -1-k)
			mu.Lock()
			if err == nil {
				updates[k]++
			} else {
				updateErrs++
				if errCode(err) != 1213 {
					t.Errorf("update failed with something other than a serialization error: %v", err)
				}
			}
			mu.Unlock()
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		db := n.db("m")
		for ctx.Err() == nil {
			_, err := db.ExecContext(context.Background(), "CALL lake_optimize('m.t')")
			mu.Lock()
			optimizeRuns++
			if err != nil {
				optimizeErrs++
				if errCode(err) != 1213 {
					t.Errorf("lake_optimize: %v", err)
				}
			}
			mu.Unlock()
			time.Sleep(time.Second)
		}
	}()
	wg.Wait()

	// Every acknowledged insert is there exactly once; counters equal acknowledged updates.
	rows, err := c.QueryContext(context.Background(), "SELECT id, n FROM t")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	counts := map[int64]int64{}
	for rows.Next() {
		var id, cnt int64
		if err := rows.Scan(&id, &cnt); err != nil {
			t.Fatal(err)
		}
		seen[id]++
		counts[id] = cnt
	}
	rows.Close()
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("acknowledged row %d seen %d times", id, seen[id])
		}
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("row %d seen %d times", id, k)
		}
	}
	var totalUpdates int64
	for k := 0; k < counters; k++ {
		totalUpdates += updates[k]
		if got := counts[int64(-1-k)]; got != updates[k] {
			t.Errorf("counter %d = %d, acknowledged updates %d", k, got, updates[k])
		}
	}
	// OPTIMIZE commits (manual and auto) carry dataChange=false on every file action.
	logDir := filepath.Join(n.dir, "m", "t", "_delta_log")
	entries, _ := os.ReadDir(logDir)
	var optimizes, autos int
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), "_") {
			continue
		}
		ops, dataChange := scanCommit(t, filepath.Join(logDir, e.Name()))
		if ops.op == "OPTIMIZE" {
			optimizes++
			if ops.auto {
				autos++
			}
			if dataChange {
				t.Errorf("%s: OPTIMIZE commit with dataChange=true", e.Name())
			}
		}
	}
	files := queryInt(t, c, "SELECT COUNT(*) FROM lake_files('m.t')")
	t.Logf("%v: %d inserts acknowledged (%d failed), %d updates (%d failed), %d lake_optimize calls (%d failed), %d OPTIMIZE commits (%d auto), %d live files",
		d, len(acked), insertErrs, totalUpdates, updateErrs, optimizeRuns, optimizeErrs, optimizes, autos, files)
	if totalUpdates == 0 || len(acked) == 0 || optimizes == 0 {
		t.Fatalf("the load did not exercise everything")
	}
	if insertErrs > 0 {
		t.Errorf("%d inserts failed; inserts never conflict with compaction", insertErrs)
	}
}

type commitOps struct {
	op   string
	auto bool
}

// scanCommit reads a commit file: its operation, and whether any add or remove has
// dataChange=true.
func scanCommit(t *testing.T, path string) (commitOps, bool) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ops commitOps
	dataChange := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var a struct {
			CommitInfo *struct {
				Operation           string         `json:"operation"`
				OperationParameters map[string]any `json:"operationParameters"`
			} `json:"commitInfo"`
			Add    *struct{ DataChange bool } `json:"add"`
			Remove *struct{ DataChange bool } `json:"remove"`
		}
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch {
		case a.CommitInfo != nil:
			ops.op = a.CommitInfo.Operation
			ops.auto = a.CommitInfo.OperationParameters["auto"] == true
		case a.Add != nil && a.Add.DataChange, a.Remove != nil && a.Remove.DataChange:
			dataChange = true
		}
	}
	return ops, dataChange
}

// TestMaintenanceSurvivesSIGKILL kills the daemon in the middle of OPTIMIZE, ZORDER and
// VACUUM: after a restart the table is readable and holds exactly the same rows.
func TestMaintenanceSurvivesSIGKILL(t *testing.T) {
	bin := buildDaemon(t)
	dir := t.TempDir()
	addr := freePort(t)
	d := startDaemon(t, bin, dir, addr)
	defer func() { d.kill() }()
	db := daemonDB(t, addr, "")
	defer db.Close()
	ctx := context.Background()
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE DATABASE m")
	exec("CREATE TABLE m.t (id BIGINT PRIMARY KEY, a BIGINT, b DOUBLE) COMMENT 'delta.autoOptimize.autoCompact=false'")
	exec("CREATE TABLE m.seq (n BIGINT)")
	for i := 0; i < 5; i++ {
		exec(fmt.Sprintf("INSERT INTO m.seq VALUES %s", seqValues(i*1000, 1000)))
	}
	fill := func(round int) {
		for i := 0; i < 30; i++ {
			base := (round*30 + i) * 5000
			exec(fmt.Sprintf("INSERT INTO m.t SELECT %d + n, n * 7919 %% 100003, n / 7 FROM m.seq", base))
		}
	}
	fingerprint := func() string {
		var n, sa, sb string
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*), CAST(SUM(a) AS CHAR), CAST(ROUND(SUM(b), 3) AS CHAR) FROM m.t").Scan(&n, &sa, &sb); err != nil {
			t.Fatalf("reading the table: %v", err)
		}
		return n + "/" + sa + "/" + sb
	}
	ops := []string{
		"CALL lake_optimize('m.t')",
		"CALL lake_zorder('m.t', 'a,b')",
		"CALL lake_vacuum('m.t', 0)",
	}
	for round, op := range ops {
		fill(round)
		if round == 2 {
			exec("CALL lake_optimize('m.t')") // gives VACUUM tombstoned files to delete
		}
		want := fingerprint()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "SET lake_vacuum_retention_check = OFF"); err != nil {
			t.Fatal(err)
		}
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			_, _ = conn.ExecContext(ctx, op)
		}()
		// Kill as soon as SHOW PROCESSLIST shows the operation has done some of its work.
		watcher, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		midway := false
	watch:
		for {
			select {
			case <-finished:
				break watch
			default:
			}
			var id, user, host, dbName, command, state, info sql.NullString
			var secs sql.NullInt64
			rows, err := watcher.QueryContext(ctx, "SHOW PROCESSLIST")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				_ = rows.Scan(&id, &user, &host, &dbName, &command, &secs, &state, &info)
				if i := strings.Index(info.String, "progress: "); i >= 0 && !strings.HasPrefix(info.String[i:], "progress: 0/") {
					midway = true
				}
			}
			rows.Close()
			if midway {
				break
			}
		}
		d.kill()
		t.Logf("%s: killed midway=%v", op, midway)
		if !midway && !strings.Contains(op, "vacuum") {
			t.Errorf("%s finished before it could be killed: the test did not interrupt it", op)
		}
		watcher.Close()
		conn.Close()
		db.Close()
		d = startDaemon(t, bin, dir, addr)
		db = daemonDB(t, addr, "")
		if got := fingerprint(); got != want {
			t.Fatalf("after SIGKILL during %s: table holds %s, want %s", op, got, want)
		}
		// The interrupted operation can run again to completion.
		again, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"SET lake_vacuum_retention_check = OFF", op} {
			if _, err := again.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		again.Close()
		if got := fingerprint(); got != want {
			t.Fatalf("after re-running %s: %s, want %s", op, got, want)
		}
	}
}

// seqValues renders "(from), (from+1), …" for n values.
func seqValues(from, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%d)", from+i)
	}
	return b.String()
}

// seqTable creates table name(n BIGINT) holding 0…count-1.
func seqTable(t *testing.T, c *sql.Conn, name string, count int) {
	t.Helper()
	mustExec(t, c, "CREATE TABLE "+name+" (n BIGINT)")
	for from := 0; from < count; from += 1000 {
		mustExec(t, c, "INSERT INTO "+name+" VALUES "+seqValues(from, min(1000, count-from)))
	}
}

// The primary-key index follows compactions without rereading every key: keys that moved to
// a compacted file are still duplicates, keys deleted before or after a compaction are free.
func TestKeysAcrossCompactionAndDelete(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE k")
	mustExec(t, c, "USE k")
	mustExec(t, c, "CREATE TABLE t (id INT PRIMARY KEY, v INT) COMMENT 'delta.autoOptimize.autoCompact=false'")
	for i := 0; i < 20; i++ {
		mustExec(t, c, fmt.Sprintf("INSERT INTO t VALUES (%d, %d)", i, i))
	}
	mustExec(t, c, "DELETE FROM t WHERE id = 3")
	callOptimize(t, c, "CALL lake_optimize('k.t')")
	mustExec(t, c, "DELETE FROM t WHERE id = 7")
	for _, tc := range []struct {
		id  int
		dup bool
	}{{0, true}, {19, true}, {3, false}, {7, false}, {12, true}} {
		_, err := c.ExecContext(context.Background(), fmt.Sprintf("INSERT INTO t VALUES (%d, -1)", tc.id))
		if tc.dup && errCode(err) != 1062 || !tc.dup && err != nil {
			t.Errorf("INSERT of key %d after compaction: %v (duplicate expected: %v)", tc.id, err, tc.dup)
		}
	}
	callOptimize(t, c, "CALL lake_optimize('k.t')")
	if got := queryInt(t, c, "SELECT COUNT(*) FROM t"); got != 20 {
		t.Fatalf("%d rows, want 20", got)
	}
	if _, err := c.ExecContext(context.Background(), "INSERT INTO t VALUES (7, 0)"); errCode(err) != 1062 {
		t.Fatalf("re-inserted key 7 after a second compaction: %v, want 1062", err)
	}
	mustExec(t, c, "UPDATE t SET v = 100 WHERE id = 12")
	if got := queryInt(t, c, "SELECT v FROM t WHERE id = 12"); got != 100 {
		t.Fatalf("v = %d after an update by key across compactions", got)
	}
}

// TestS3WarehouseCache: on an S3 warehouse a repeated query is served from the read cache,
// and maintenance (OPTIMIZE, VACUUM) works there as on a local one.
func TestS3WarehouseCache(t *testing.T) {
	t.Parallel()
	n := startS3Node(t)
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE s")
	mustExec(t, c, "USE s")
	mustExec(t, c, "CREATE TABLE t (id INT PRIMARY KEY, v DOUBLE)")
	for i := 0; i < 5; i++ {
		mustExec(t, c, fmt.Sprintf("INSERT INTO t VALUES (%d, %d.5)", i, i))
	}
	sum := func() string { return queryString(t, c, "SELECT CAST(SUM(v) AS CHAR) FROM t") }
	want := sum()
	misses := n.metric(t, "lakehoused_s3_cache_misses_total")
	hits := n.metric(t, "lakehoused_s3_cache_hits_total")
	if got := sum(); got != want {
		t.Fatalf("sum %s, then %s", want, got)
	}
	// One miss is the refresh's probe for a newer commit, which must ask the store.
	if m := n.metric(t, "lakehoused_s3_cache_misses_total"); m > misses+1 {
		t.Errorf("a repeated query missed the cache %d times", m-misses)
	}
	if h := n.metric(t, "lakehoused_s3_cache_hits_total"); h <= hits {
		t.Errorf("a repeated query made no cache hits")
	}
	r := callOptimize(t, c, "CALL lake_optimize('s.t')")
	if r.removed != 5 || r.added != 1 {
		t.Fatalf("optimize on S3: %+v", r)
	}
	mustExec(t, c, "SET lake_vacuum_retention_check = OFF")
	var files, bytes int64
	var dry bool
	var v sql.NullInt64
	if err := c.QueryRowContext(context.Background(), "CALL lake_vacuum('s.t', 0)").Scan(&files, &bytes, &dry, &v); err != nil || files != 5 {
		t.Fatalf("vacuum on S3: %d files (%v), want 5", files, err)
	}
	if got := sum(); got != want {
		t.Fatalf("sum after optimize and vacuum on S3: %s, want %s", got, want)
	}
}
