package system_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fastLoads reads the counter of LOAD DATA statements the columnar fast path ran.
func (n *node) fastLoads(t *testing.T) int64 {
	t.Helper()
	return n.metric(t, "lakehoused_load_data_fast_total")
}

// metric reads one counter from /metrics.
func (n *node) metric(t *testing.T, name string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + n.srv.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatalf("%s missing from /metrics", name)
	return 0
}

type loadEnv struct {
	t   *testing.T
	n   *node
	c   *sql.Conn
	dir string
	k   int
}

func newLoadEnv(t *testing.T) *loadEnv {
	n := startNode(t, "")
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE d")
	mustExec(t, c, "USE d")
	return &loadEnv{t: t, n: n, c: c, dir: t.TempDir()}
}

func (e *loadEnv) file(content string) string {
	e.k++
	p := filepath.Join(e.dir, fmt.Sprintf("f%d.txt", e.k))
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// load runs a LOAD DATA statement (%s = the file) and returns rows affected and the error.
func (e *loadEnv) load(content, stmt string) (int64, error) {
	e.t.Helper()
	res, err := e.c.ExecContext(context.Background(), fmt.Sprintf(stmt, e.file(content)))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// rows renders a query's result as "a|b;c|d".
func (e *loadEnv) rows(q string) string {
	e.t.Helper()
	res, err := readQuery(context.Background(), e.c, q)
	if err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	var out []string
	for _, r := range res.rows {
		var f []string
		for _, v := range r {
			f = append(f, fmtVal(v))
		}
		out = append(out, strings.Join(f, "|"))
	}
	return strings.Join(out, ";")
}

func (e *loadEnv) expect(q, want string) {
	e.t.Helper()
	if got := e.rows(q); got != want {
		e.t.Errorf("%s:\n got  %s\n want %s", q, got, want)
	}
}

// TestLoadDataFastPath covers the columnar LOAD DATA path: every FIELDS/LINES option, NULLs,
// quoting, column lists with defaults, type conversion and its errors, keys and transactions.
func TestLoadDataFastPath(t *testing.T) {
	t.Parallel()
	e := newLoadEnv(t)
	fast := e.n.fastLoads(t)
	mustFast := func(what string) {
		t.Helper()
		if now := e.n.fastLoads(t); now != fast+1 {
			t.Errorf("%s: fast path not taken (counter %d -> %d)", what, fast, now)
		}
		fast = e.n.fastLoads(t)
	}

	t.Run("options", func(t *testing.T) {
		mustExec(t, e.c, "CREATE TABLE s (id INT PRIMARY KEY, a VARCHAR(40), b VARCHAR(40))")
		// Defaults: tab-separated, backslash escapes, \N = NULL.
		n, err := e.load("1\tx\\ty\t\\N\n2\tline\\nbreak\tback\\\\slash\n3\tNULL\t\n", "LOAD DATA INFILE '%s' INTO TABLE s")
		if err != nil || n != 3 {
			t.Fatalf("defaults: %d, %v", n, err)
		}
		mustFast("defaults")
		e.expect("SELECT id, a, b FROM s ORDER BY id", "1|x\ty|NULL;2|line\nbreak|back\\slash;3|NULL|")
		// Enclosed fields with embedded terminators, doubled and escaped quotes, newlines.
		_, err = e.load("10,\"a,b\",\"say \"\"hi\"\"\"\r\n11,\"multi\r\nline\",\"esc \\\" q\"\r\n12,plain,\"\"\r\n",
			"LOAD DATA INFILE '%s' INTO TABLE s FIELDS TERMINATED BY ',' ENCLOSED BY '\"' LINES TERMINATED BY '\\r\\n'")
		if err != nil {
			t.Fatal(err)
		}
		mustFast("enclosed")
		e.expect("SELECT id, a, b FROM s WHERE id >= 10 ORDER BY id", "10|a,b|say \"hi\";11|multi\r\nline|esc \" q;12|plain|")
		// OPTIONALLY ENCLOSED, multi-byte field terminator, ESCAPED BY other char, LINES STARTING BY, IGNORE.
		_, err = e.load("header||x||y\n>>20||'q||uoted'||!N\nnoprefix||skip||me\n>>21||a!!b||c\n",
			"LOAD DATA INFILE '%s' INTO TABLE s FIELDS TERMINATED BY '||' OPTIONALLY ENCLOSED BY '''' ESCAPED BY '!' LINES STARTING BY '>>' IGNORE 1 LINES")
		if err != nil {
			t.Fatal(err)
		}
		mustFast("options")
		e.expect("SELECT id, a, b FROM s WHERE id >= 20 ORDER BY id", "20|q||uoted|NULL;21|a!b|c")
		// No escape character: backslashes are data.
		_, err = e.load("30,a\\Nb,\\N\n", "LOAD DATA INFILE '%s' INTO TABLE s FIELDS TERMINATED BY ',' ESCAPED BY ''")
		if err != nil {
			t.Fatal(err)
		}
		mustFast("no escape")
		e.expect("SELECT a, b FROM s WHERE id = 30", "a\\Nb|\\N")
	})

	t.Run("columns and defaults", func(t *testing.T) {
		mustExec(t, e.c, "CREATE TABLE cd (id INT NOT NULL, qty INT DEFAULT 7, name VARCHAR(10) DEFAULT 'none', note VARCHAR(10))")
		_, err := e.load("x,1\ny,2\n", "LOAD DATA LOCAL INFILE '%s' INTO TABLE cd FIELDS TERMINATED BY ',' (name, id)")
		if err != nil {
			t.Fatal(err)
		}
		mustFast("column list")
		// Empty non-string field -> default; fewer fields -> defaults; more fields ignored.
		_, err = e.load("3,,abc\n4\n5,9,n,extra,more\n", "LOAD DATA INFILE '%s' INTO TABLE cd FIELDS TERMINATED BY ','")
		if err != nil {
			t.Fatal(err)
		}
		mustFast("short rows")
		e.expect("SELECT id, qty, name, note FROM cd ORDER BY id", "1|7|x|NULL;2|7|y|NULL;3|7|abc|NULL;4|7|none|NULL;5|9|n|extra")
		// A statement-time default is evaluated once on the fast path; a per-row one (UUID())
		// sends the load down the engine's row path, so every row gets its own value.
		mustExec(t, e.c, "CREATE TABLE fd (id INT, at DATETIME DEFAULT CURRENT_TIMESTAMP, g CHAR(36) DEFAULT (UUID()))")
		mustExec(t, e.c, "CREATE TABLE td (id INT, at DATETIME DEFAULT CURRENT_TIMESTAMP)")
		if _, err := e.load("1\n2\n3\n", "LOAD DATA INFILE '%s' INTO TABLE td (id)"); err != nil {
			t.Fatal(err)
		}
		mustFast("CURRENT_TIMESTAMP default")
		e.expect("SELECT COUNT(*), COUNT(DISTINCT at), MIN(at) > '2020-01-01' FROM td", "3|1|1")
		if _, err := e.load("1\n2\n3\n", "LOAD DATA INFILE '%s' INTO TABLE fd (id)"); err != nil {
			t.Fatal(err)
		}
		if now := e.n.fastLoads(t); now != fast {
			t.Errorf("UUID() default: fast path taken (counter %d -> %d)", fast, now)
		}
		e.expect("SELECT COUNT(*), COUNT(DISTINCT g), COUNT(at) FROM fd", "3|3|3")
	})

	t.Run("types", func(t *testing.T) {
		mustExec(t, e.c, `CREATE TABLE ty (id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT,
			iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED, f FLOAT, d DOUBLE, dm DECIMAL(6,2), c CHAR(3), dt DATE,
			ts DATETIME, ts3 DATETIME(3), tm TIMESTAMP, e ENUM('red','green'), st SET('a','b','c'), j JSON, b BOOLEAN)`)
		row := "1,-128,255,-32768,8388607,4294967295,-9223372036854775808,18446744073709551615,1.5,2.25,-1234.565,abc,2024-02-29," +
			"2024-02-29 23:59:59,2024-01-02 03:04:05.1236,2024-01-02 03:04:05,green,\"c,a\",\"{\"\"k\"\": [1, 2]}\",1\n" +
			"2,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N\n"
		_, err := e.load(row, "LOAD DATA INFILE '%s' INTO TABLE ty FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"'")
		if err != nil {
			t.Fatal(err)
		}
		mustFast("types")
		e.expect("SELECT ti, tu, si, mi, iu, bi, bu, f, d, dm, c, dt, ts, ts3, tm, e, st, j, b FROM ty WHERE id = 1",
			"-128|255|-32768|8388607|4294967295|-9223372036854775808|18446744073709551615|1.5|2.25|-1234.57|abc|2024-02-29|"+
				"2024-02-29 23:59:59|2024-01-02 03:04:05.124|2024-01-02 03:04:05|green|a,c|{\"k\": [1, 2]}|1")
		e.expect("SELECT COUNT(*) FROM ty WHERE id = 2 AND ti IS NULL AND dm IS NULL AND dt IS NULL AND j IS NULL AND e IS NULL", "1")

		// Strict: a bad value fails the statement, naming line, column and value; nothing is loaded.
		for _, c := range []struct {
			col, val string
			code     uint16
		}{
			{"ti", "128", 1264}, {"tu", "-1", 1264}, {"iu", "abc", 1366}, {"bu", "18446744073709551616", 1264},
			{"dm", "12345.6", 1264}, {"dm", "1x", 1366}, {"c", "abcd", 1406}, {"dt", "2023-02-29", 1366},
			{"ts", "2024-01-01 25:00:00", 1366}, {"e", "blue", 1366}, {"st", "z", 1366}, {"j", "{bad", 3140},
			{"f", "1e40", 1264}, {"d", "x1", 1366}, {"d", "NaN", 1366}, {"d", "1e999", 1264}, {"si", "inf", 1366}, {"si", "2.5e9", 1264}, {"tm", "1960-01-01 00:00:00", 1264},
		} {
			stmt := fmt.Sprintf("LOAD DATA INFILE '%%s' INTO TABLE ty FIELDS TERMINATED BY ';' (id, %s)", c.col)
			good := map[string]string{"dt": "2024-01-01", "ts": "2024-01-01 00:00:00", "tm": "2024-01-01 00:00:00", "e": "red", "st": "a", "j": "1"}[c.col]
			if good == "" {
				good = "1"
			}
			_, err := e.load("100;"+good+"\n101;"+c.val+"\n", stmt)
			if errCode(err) != c.code || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "'"+c.col+"'") {
				t.Errorf("%s = %q: want error %d naming line 2 and the column, got %v", c.col, c.val, c.code, err)
			}
			fast = e.n.fastLoads(t)
		}
		e.expect("SELECT COUNT(*) FROM ty", "2")

		// IGNORE: numbers are clamped and strings truncated with a warning (as GMS's INSERT IGNORE);
		// values with no closest value (dates, enums) skip the row with a warning.
		n, err := e.load("200;300;toolong;2024-13-01\n201;5;ok;2024-01-01\n",
			"LOAD DATA INFILE '%s' IGNORE INTO TABLE ty FIELDS TERMINATED BY ';' (id, ti, c, dt)")
		if err != nil || n != 1 {
			t.Fatalf("IGNORE: %d rows, %v; want 1", n, err)
		}
		mustFast("ignore")
		res, _ := readQuery(context.Background(), e.c, "SHOW WARNINGS")
		var codes []string
		for _, r := range res.rows {
			codes = append(codes, fmtVal(r[1]))
			if !strings.Contains(fmtVal(r[2]), "line 1") {
				t.Errorf("warning does not name the line: %v", r[2])
			}
		}
		if got := strings.Join(codes, ","); got != "1366,1406,1264" { // SHOW WARNINGS lists the latest first
			t.Errorf("warnings %s, want 1366,1406,1264", got)
		}
		e.expect("SELECT id, ti, c, dt FROM ty WHERE id >= 200", "201|5|ok|2024-01-01")
		n, err = e.load("210;127;abc\n", "LOAD DATA INFILE '%s' IGNORE INTO TABLE ty FIELDS TERMINATED BY ';' (id, ti, c)")
		if err != nil || n != 1 {
			t.Fatal(n, err)
		}
		n, err = e.load("211;999;abcdef\n", "LOAD DATA LOCAL INFILE '%s' INTO TABLE ty FIELDS TERMINATED BY ';' (id, ti, c)")
		if err != nil || n != 1 {
			t.Fatalf("LOCAL implies IGNORE: %d, %v", n, err)
		}
		e.expect("SELECT id, ti, c FROM ty WHERE id = 211", "211|127|abc")
		// Invalid JSON fails even with LOCAL (as in MySQL); the load stops early while the
		// client is still sending, and the connection stays usable.
		var big strings.Builder
		big.WriteString("300;{bad\n")
		for i := 301; i < 20000; i++ {
			fmt.Fprintf(&big, "%d;{}\n", i)
		}
		_, err = e.load(big.String(), "LOAD DATA LOCAL INFILE '%s' INTO TABLE ty FIELDS TERMINATED BY ';' (id, j)")
		if errCode(err) != 3140 || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("invalid JSON with LOCAL: want 3140 at line 1, got %v", err)
		}
		e.expect("SELECT COUNT(*) FROM ty WHERE id >= 300", "0")
		fast = e.n.fastLoads(t)
	})

	t.Run("not null", func(t *testing.T) {
		mustExec(t, e.c, "CREATE TABLE nn (id INT NOT NULL, v VARCHAR(5) NOT NULL)")
		_, err := e.load("1,a\n2,\\N\n", "LOAD DATA INFILE '%s' INTO TABLE nn FIELDS TERMINATED BY ','")
		if errCode(err) != 1048 || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("NULL into NOT NULL: want 1048 at line 2, got %v", err)
		}
		n, err := e.load("1,a\n2,\\N\n3,c\n", "LOAD DATA LOCAL INFILE '%s' INTO TABLE nn FIELDS TERMINATED BY ','")
		if err != nil || n != 2 {
			t.Fatalf("LOCAL: %d, %v", n, err)
		}
		e.expect("SHOW WARNINGS", "Warning|1048|Column 'v' cannot be null at line 2")
		e.expect("SELECT id, v FROM nn ORDER BY id", "1|a;3|c")
		fast = e.n.fastLoads(t)
	})

	t.Run("keys", func(t *testing.T) {
		mustExec(t, e.c, "CREATE TABLE k (a INT, b VARCHAR(5), v INT, PRIMARY KEY (a, b))")
		if _, err := e.load("1,x,1\n2,x,2\n", "LOAD DATA INFILE '%s' INTO TABLE k FIELDS TERMINATED BY ','"); err != nil {
			t.Fatal(err)
		}
		// Within the file.
		_, err := e.load("3,x,1\n3,x,2\n", "LOAD DATA INFILE '%s' INTO TABLE k FIELDS TERMINATED BY ','")
		if errCode(err) != 1062 || !strings.Contains(err.Error(), "3-x") || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("duplicate in file: %v", err)
		}
		// Keys out of order: the statement's key set takes over from the ascending check.
		_, err = e.load("30,x,1\n10,x,1\n20,x,1\n40,x,1\n10,x,2\n", "LOAD DATA INFILE '%s' INTO TABLE k FIELDS TERMINATED BY ','")
		if errCode(err) != 1062 || !strings.Contains(err.Error(), "10-x") || !strings.Contains(err.Error(), "line 5") {
			t.Errorf("duplicate after unordered keys: %v", err)
		}
		if n, err := e.load("30,x,1\n10,x,1\n20,x,1\n", "LOAD DATA INFILE '%s' INTO TABLE k FIELDS TERMINATED BY ','"); err != nil || n != 3 {
			t.Errorf("unordered distinct keys: %d, %v", n, err)
		}
		mustExec(t, e.c, "DELETE FROM k WHERE a >= 10")
		// Against committed rows.
		_, err = e.load("4,x,1\n2,x,9\n", "LOAD DATA INFILE '%s' INTO TABLE k FIELDS TERMINATED BY ','")
		if errCode(err) != 1062 {
			t.Errorf("duplicate of a committed row: %v", err)
		}
		e.expect("SELECT COUNT(*) FROM k", "2")
		// IGNORE skips duplicates with warnings.
		n, err := e.load("2,x,9\n5,x,5\n5,x,6\n", "LOAD DATA LOCAL INFILE '%s' INTO TABLE k FIELDS TERMINATED BY ','")
		if err != nil || n != 1 {
			t.Fatalf("IGNORE duplicates: %d, %v", n, err)
		}
		res, _ := readQuery(context.Background(), e.c, "SHOW WARNINGS")
		if len(res.rows) != 2 || fmtVal(res.rows[0][1]) != "1062" {
			t.Errorf("warnings: %v", res.rows)
		}
		e.expect("SELECT a, b, v FROM k ORDER BY a", "1|x|1;2|x|2;5|x|5")
		// Against rows inserted earlier in the same transaction, and deleted ones.
		mustExec(t, e.c, "BEGIN")
		mustExec(t, e.c, "INSERT INTO k VALUES (6, 'x', 6)")
		mustExec(t, e.c, "DELETE FROM k WHERE a = 1")
		_, err = e.load("6,x,0\n", "LOAD DATA INFILE '%s' INTO TABLE k FIELDS TERMINATED BY ','")
		if errCode(err) != 1062 {
			t.Errorf("duplicate of a row inserted in the transaction: %v", err)
		}
		if _, err := e.load("1,x,11\n7,x,7\n", "LOAD DATA INFILE '%s' INTO TABLE k FIELDS TERMINATED BY ','"); err != nil {
			t.Errorf("re-inserting a key deleted in the transaction: %v", err)
		}
		e.expect("SELECT a, v FROM k ORDER BY a", "1|11;2|2;5|5;6|6;7|7")
		mustExec(t, e.c, "COMMIT")
		e.expect("SELECT a, v FROM k ORDER BY a", "1|11;2|2;5|5;6|6;7|7")
		fast = e.n.fastLoads(t)
	})

	t.Run("transaction", func(t *testing.T) {
		mustExec(t, e.c, "CREATE TABLE tx (id INT PRIMARY KEY, v INT)")
		mustExec(t, e.c, "BEGIN")
		if _, err := e.load("1,1\n2,2\n", "LOAD DATA INFILE '%s' INTO TABLE tx FIELDS TERMINATED BY ','"); err != nil {
			t.Fatal(err)
		}
		mustFast("in transaction")
		e.expect("SELECT COUNT(*), SUM(v) FROM tx", "2|3") // read-your-writes
		// A failing load inside the transaction changes nothing, earlier work stays.
		if _, err := e.load("3,3\n1,1\n", "LOAD DATA INFILE '%s' INTO TABLE tx FIELDS TERMINATED BY ','"); errCode(err) != 1062 {
			t.Errorf("want 1062, got %v", err)
		}
		if _, err := e.c.ExecContext(context.Background(), "INSERT INTO tx VALUES (1, 1)"); errCode(err) != 1062 {
			t.Errorf("want 1062, got %v", err)
		}
		e.expect("SELECT COUNT(*), SUM(v) FROM tx", "2|3")
		// Loaded rows are changed like any other by later statements of the transaction.
		mustExec(t, e.c, "UPDATE tx SET v = 20 WHERE id = 2")
		mustExec(t, e.c, "DELETE FROM tx WHERE id = 1")
		if _, err := e.load("1,5\n4,4\n", "LOAD DATA INFILE '%s' INTO TABLE tx FIELDS TERMINATED BY ','"); err != nil {
			t.Errorf("reloading a deleted key: %v", err)
		}
		if _, err := e.load("4,0\n", "LOAD DATA INFILE '%s' INTO TABLE tx FIELDS TERMINATED BY ','"); errCode(err) != 1062 {
			t.Errorf("duplicate of a key loaded earlier in the transaction: %v", err)
		}
		e.expect("SELECT id, v FROM tx ORDER BY id", "1|5;2|20;4|4")
		mustExec(t, e.c, "ROLLBACK")
		e.expect("SELECT COUNT(*) FROM tx", "0")
		// The same, committed.
		mustExec(t, e.c, "BEGIN")
		if _, err := e.load("1,1\n2,2\n3,3\n", "LOAD DATA INFILE '%s' INTO TABLE tx FIELDS TERMINATED BY ','"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.load("4,4\n", "LOAD DATA INFILE '%s' INTO TABLE tx FIELDS TERMINATED BY ','"); err != nil {
			t.Fatal(err)
		}
		mustExec(t, e.c, "DELETE FROM tx WHERE id = 3")
		mustExec(t, e.c, "UPDATE tx SET v = 40 WHERE id = 4")
		mustExec(t, e.c, "COMMIT")
		e.expect("SELECT id, v FROM tx ORDER BY id", "1|1;2|2;4|40")
		if _, err := e.c.ExecContext(context.Background(), "INSERT INTO tx VALUES (2, 0)"); errCode(err) != 1062 {
			t.Errorf("want 1062 after commit, got %v", err)
		}
		fast = e.n.fastLoads(t)
	})

	t.Run("many files", func(t *testing.T) {
		// A load that rolls over many files keeps the key index exact: duplicates, deletes
		// and updates of rows in any of the files find the right file.
		var b strings.Builder
		for i := 1; i <= 150000; i++ { // staged in 64k-row chunks: one file per chunk here
			fmt.Fprintf(&b, "%d,%d\n", i, i*10)
		}
		mustExec(t, e.c, "CREATE TABLE mf (id INT PRIMARY KEY, v INT) COMMENT 'delta.targetFileSize=4096'")
		// A row first, so the table's key index is in use and the load's keys are added to it
		// (a load into an empty table leaves the index to be built when needed).
		mustExec(t, e.c, "INSERT INTO mf VALUES (0, 0)")
		if _, err := e.load(b.String(), "LOAD DATA INFILE '%s' INTO TABLE mf FIELDS TERMINATED BY ','"); err != nil {
			t.Fatal(err)
		}
		mustFast("many files")
		var files int
		if err := e.c.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM lake_files('d.mf')").Scan(&files); err != nil || files < 3 {
			t.Fatalf("want several files, got %d (%v)", files, err)
		}
		for _, id := range []int{1, 70000, 150000} {
			if _, err := e.c.ExecContext(context.Background(), fmt.Sprintf("INSERT INTO mf VALUES (%d, 0)", id)); errCode(err) != 1062 {
				t.Errorf("duplicate of loaded key %d: %v", id, err)
			}
		}
		mustExec(t, e.c, "DELETE FROM mf WHERE id IN (2, 70001, 149999)")
		mustExec(t, e.c, "UPDATE mf SET v = -1 WHERE id IN (1, 130000)")
		mustExec(t, e.c, "INSERT INTO mf VALUES (70001, 7)")
		e.expect("SELECT COUNT(*), SUM(v = -1), MAX(id) FROM mf", "149999|2|150000")
		e.expect("SELECT v FROM mf WHERE id = 70001", "7")
	})

	t.Run("chunks", func(t *testing.T) {
		// More rows than one parse batch and one staged chunk boundary in tests.
		var b strings.Builder
		for i := 1; i <= 10000; i++ {
			fmt.Fprintf(&b, "%d,%d.5,2024-01-%02d\n", i, i, 1+i%28)
		}
		mustExec(t, e.c, "CREATE TABLE big (id BIGINT PRIMARY KEY, x DECIMAL(10,1), d DATE)")
		n, err := e.load(b.String(), "LOAD DATA LOCAL INFILE '%s' INTO TABLE big FIELDS TERMINATED BY ','")
		if err != nil || n != 10000 {
			t.Fatal(n, err)
		}
		mustFast("big")
		e.expect("SELECT COUNT(*), SUM(x), MAX(d) FROM big", "10000|5.001e+07|2024-01-28")
		e.expect("SELECT x FROM big WHERE id = 4321", "4321.5")
	})

	t.Run("fallback", func(t *testing.T) {
		mustExec(t, e.c, "CREATE TABLE fb (id INT, v INT)")
		_, err := e.load("1,2\n", "LOAD DATA INFILE '%s' INTO TABLE fb FIELDS TERMINATED BY ',' (id, @x) SET v = @x * 10")
		if err != nil {
			t.Fatal(err)
		}
		if now := e.n.fastLoads(t); now != fast {
			t.Errorf("SET clause should fall back to GMS")
		}
		e.expect("SELECT id, v FROM fb", "1|20")
		_, err = e.load("1,5\n", "LOAD DATA INFILE '%s' REPLACE INTO TABLE fb FIELDS TERMINATED BY ','")
		if err != nil {
			t.Fatal(err)
		}
		if now := e.n.fastLoads(t); now != fast {
			t.Errorf("REPLACE should fall back to GMS")
		}
	})
}
