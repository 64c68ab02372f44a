package system_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/internal/s3test"
	"github.com/lakehoused/lakehoused/server"
	"github.com/lakehoused/lakehoused/storage"
)

// External data through SQL: file, HTTP and S3 sources, MariaDB and PostgreSQL queries,
// lake_copy and lake_export, against real servers (the machine's MariaDB and PostgreSQL,
// a versitygw gateway, an HTTP server of the test's own).

// queryRows runs q and renders its rows as tab-separated lines.
func queryRows(t *testing.T, c interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, q string) []string {
	t.Helper()
	rows, err := c.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	res, err := scanResult(rows)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res.lines()
}

func expectRows(t *testing.T, c interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, q string, want ...string) {
	t.Helper()
	got := queryRows(t, c, q)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n got: %q\nwant: %q", q, got, want)
	}
}

func expectErr(t *testing.T, c interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, q string, code uint16, contains string) {
	t.Helper()
	_, err := c.ExecContext(context.Background(), q)
	if err == nil {
		t.Fatalf("%s: succeeded, want error %d", q, code)
	}
	if errCode(err) != code || !strings.Contains(err.Error(), contains) {
		t.Fatalf("%s: got %v, want error %d containing %q", q, err, code, contains)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFileSources(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	imp := filepath.Join(n.dir, "import")
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE d")
	mustExec(t, c, "USE d")
	writeFile(t, filepath.Join(imp, "people.csv"), "\ufeffid,name,born,score\n1,Ada,1815-12-10,9.5\n2,\"Grace \"\"Amazing\"\" Hopper\",1906-12-09,\n3,\"Linus,\nthe second\",1969-12-28,7.25\n")
	expectRows(t, c, "SELECT id, name, born, score FROM read_csv('file://"+imp+"/people.csv') ORDER BY id",
		"1\tAda\t1815-12-10\t9.5", "2\tGrace \"Amazing\" Hopper\t1906-12-09\tNULL", "3\tLinus,\nthe second\t1969-12-28\t7.25")
	// Wherever a table is: joins, CTAS, INSERT … SELECT.
	mustExec(t, c, "CREATE TABLE scores (id BIGINT PRIMARY KEY, bonus INT)")
	mustExec(t, c, "INSERT INTO scores VALUES (1, 10), (3, 30)")
	expectRows(t, c, "SELECT p.name, s.bonus FROM read_csv('file://"+imp+"/people.csv') AS p JOIN scores s ON s.id = p.id ORDER BY p.id",
		"Ada\t10", "Linus,\nthe second\t30")
	before := n.metric(t, "lakehoused_insert_select_fast_total")
	mustExec(t, c, "CREATE TABLE people AS SELECT * FROM read_csv('file://"+imp+"/people.csv')")
	expectRows(t, c, "SELECT COUNT(*), SUM(score) FROM people", "3\t16.75")
	if after := n.metric(t, "lakehoused_insert_select_fast_total"); after != before+1 {
		t.Fatalf("CREATE TABLE … AS SELECT * FROM read_csv did not take the Arrow fast path (%d → %d)", before, after)
	}
	mustExec(t, c, "INSERT INTO people SELECT * FROM read_csv('file://"+imp+"/people.csv') WHERE id = 1")
	expectRows(t, c, "SELECT COUNT(*) FROM people WHERE id = 1", "2")

	// Typed columns, options, errors naming line and column.
	writeFile(t, filepath.Join(imp, "semi.csv"), "a;b\n1;x\n2;NA\nbad;z\n")
	// With every column text, a first row of distinct values reads as a header (DuckDB's
	// rule) unless header=false says otherwise.
	expectRows(t, c, "SELECT * FROM read_csv('file://"+imp+"/semi.csv', 'delimiter=;, null=NA, columns=a VARCHAR(5),b VARCHAR(3)')",
		"1\tx", "2\tNULL", "bad\tz")
	expectRows(t, c, "SELECT * FROM read_csv('file://"+imp+"/semi.csv', 'delimiter=;, null=NA, header=false, columns=a VARCHAR(5),b VARCHAR(3)')",
		"a\tb", "1\tx", "2\tNULL", "bad\tz")
	expectErr(t, c, "SELECT * FROM read_csv('file://"+imp+"/semi.csv', 'delimiter=;, header=false, columns=a VARCHAR(2),b TEXT')", 1105, "VARCHAR(2)")
	expectErr(t, c, "SELECT * FROM read_csv('file://"+imp+"/semi.csv', 'delimiter=;, header=true, columns=a BIGINT,b TEXT')", 1105, "line 4")
	expectRows(t, c, "SELECT a, b FROM read_csv('file://"+imp+"/semi.csv', 'delimiter=;, header=true, on_error=null, columns=a BIGINT,b TEXT')",
		"1\tx", "2\tNA", "NULL\tz")
	writeFile(t, filepath.Join(imp, "ragged.csv"), "a,b\n1,2\n3\n")
	expectErr(t, c, "SELECT * FROM read_csv('file://"+imp+"/ragged.csv')", 1105, "line 3")

	// JSON lines and arrays; Parquet through an export; globs.
	writeFile(t, filepath.Join(imp, "j/1.jsonl"), "{\"id\": 1, \"tags\": [\"a\"], \"name\": \"é\"}\n{\"id\": 2, \"name\": null}\n")
	writeFile(t, filepath.Join(imp, "j/2.json"), "[{\"id\": 3, \"tags\": {\"k\": 1}, \"name\": \"🦆\"}]")
	expectRows(t, c, "SELECT id, name, tags FROM read_json('file://"+imp+"/j/1.jsonl') ORDER BY id", "1\té\t[\"a\"]", "2\tNULL\tNULL")
	expectRows(t, c, "SELECT id, name FROM read_json('file://"+imp+"/j/2.json')", "3\t🦆")
	mustExec(t, c, "CALL lake_export('SELECT * FROM people ORDER BY id', 'file://"+imp+"/out/people.parquet', 'parquet')")
	expectRows(t, c, "SELECT COUNT(*), SUM(score) FROM read_parquet('file://"+imp+"/out/*.parquet')", "4\t26.25")
	mustExec(t, c, "CALL lake_export('SELECT id, name FROM people WHERE id < 3 ORDER BY id', 'file://"+imp+"/out/p.csv', 'csv')")
	data, err := os.ReadFile(filepath.Join(imp, "out/p.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "id,name\n1,Ada\n1,Ada\n2,\"Grace \"\"Amazing\"\" Hopper\"\n"; string(data) != want {
		t.Fatalf("exported CSV:\n%s\nwant:\n%s", data, want)
	}
	mustExec(t, c, "CALL lake_export('SELECT id, name FROM people WHERE id = 2', 'file://"+imp+"/out/p.json', 'json')")
	expectRows(t, c, "SELECT id, name FROM read_json('file://"+imp+"/out/p.json')", "2\tGrace \"Amazing\" Hopper")

	// Without a current database too (GMS plans table functions inside one); the
	// connection still has none afterwards.
	nodb := n.conn("")
	expectRows(t, nodb, "SELECT COUNT(*) FROM read_csv('file://"+imp+"/people.csv')", "3")
	expectRows(t, nodb, "SELECT DATABASE()", "NULL")
	expectErr(t, nodb, "SELECT * FROM people", 1046, "")

	// read_delta reads a Delta table's folder without attaching it, at a version too (a
	// copy of one of ours here; the warehouse itself is off limits to URLs).
	if err := os.CopyFS(filepath.Join(imp, "people_copy"), os.DirFS(filepath.Join(n.dir, "d", "people"))); err != nil {
		t.Fatal(err)
	}
	expectRows(t, c, "SELECT COUNT(*) FROM read_delta('file://"+imp+"/people_copy')", "4")
	expectRows(t, c, "SELECT COUNT(*) FROM read_delta('file://"+imp+"/people_copy', 1)", "3")
	expectErr(t, c, "SELECT COUNT(*) FROM read_delta('file://"+n.dir+"/d/people')", 1290, "not allowed")

	// lake_copy matches columns by name and keeps the SELECT's aliases.
	mustExec(t, c, "CREATE TABLE swapped (score DOUBLE, id BIGINT)")
	mustExec(t, c, "CALL lake_copy('SELECT * FROM read_csv(''file://"+imp+"/people.csv'')', 'd.swapped', 'append')")
	expectRows(t, c, "SELECT id, score FROM swapped ORDER BY id", "1\t9.5", "2\tNULL", "3\t7.25")
	mustExec(t, c, "CALL lake_copy('SELECT id AS pid, name AS who FROM read_csv(''file://"+imp+"/people.csv'')', 'd.aliased', 'merge:pid')")
	expectRows(t, c, "SELECT pid, who FROM aliased WHERE pid = 1", "1\tAda")
	expectErr(t, c, "CALL lake_copy('SELECT * FROM people', 'd.inc', 'overwrite', 'incremental_column=id')", 1210, "cannot overwrite")
	expectErr(t, c, "CALL lake_copy('SELECT * FROM people', 'd.incf', 'append', 'incremental_column=score')", 1210, "use an integer")
	expectRows(t, c, "SELECT COUNT(*) FROM information_schema.tables WHERE table_name IN ('inc', 'incf')", "0")
	// A failed copy into a new table leaves no table behind.
	expectErr(t, c, "CALL lake_copy('SELECT * FROM read_csv(''file://"+imp+"/ragged.csv'')', 'd.never', 'append')", 1105, "line 3")
	expectRows(t, c, "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'never'", "0")
}

func TestImportConfinement(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	imp := filepath.Join(n.dir, "import")
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret.csv"), "a\n1\n")
	if err := os.Symlink(filepath.Join(outside, "secret.csv"), filepath.Join(imp, "link.csv")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(imp, "dirlink")); err != nil {
		t.Fatal(err)
	}
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE d")
	mustExec(t, c, "USE d")
	for _, u := range []string{
		"file://" + outside + "/secret.csv",
		"file://" + imp + "/../" + filepath.Base(n.dir) + "/import/x.csv",
		"file://" + imp + "/link.csv",
		"file://" + imp + "/dirlink/*.csv",
		"/etc/passwd",
	} {
		expectErr(t, c, "SELECT * FROM read_csv('"+u+"')", 1290, "not allowed")
	}
	expectErr(t, c, "CALL lake_export('SELECT 1', 'file://"+outside+"/x.csv', 'csv')", 1290, "--import-dir")
	expectErr(t, c, "CALL lake_export('SELECT 1', 'file://"+imp+"/dirlink/x.csv', 'csv')", 1290, "symbolic link")
	if _, err := os.Stat(filepath.Join(outside, "x.csv")); err == nil {
		t.Fatal("an export through a symbolic link wrote outside the import directory")
	}
	// The node's own files and its tables are off limits even when an import directory
	// covers them.
	n2 := startNodeWith(t, "", func(cfg *server.Config) { cfg.ImportDirs = []string{filepath.Dir(n.dir)} })
	c2 := n2.conn("")
	expectErr(t, c2, "SELECT * FROM read_csv('file://"+n2.dir+"/secret.key')", 1290, "keeps for itself")
	expectErr(t, c2, "CALL lake_export('SELECT 1', 'file://"+n2.dir+"/d/t/_delta_log/00000000000000000009.json', 'json')", 1290, "keeps for itself")
	// Private addresses over HTTP are refused unless the server allows them.
	srv := httptest.NewServer(http.FileServer(http.Dir(imp)))
	defer srv.Close()
	writeFile(t, filepath.Join(imp, "h.csv"), "a\n1\n")
	expectErr(t, c, "SELECT * FROM read_csv('"+srv.URL+"/h.csv')", 1290, "private")
	// The connection is still usable.
	expectRows(t, c, "SELECT 1", "1")
}

func TestHTTPAndS3Sources(t *testing.T) {
	t.Parallel()
	g := s3test.Start(t)
	s3cfg := storage.S3Config{Endpoint: g.Endpoint, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Region: "us-east-1"}
	n := startNodeWith(t, "", func(c *server.Config) {
		c.AllowPrivateHTTP = true
		c.S3 = s3cfg
	})
	imp := filepath.Join(n.dir, "import")
	writeFile(t, filepath.Join(imp, "h.csv"), "id,v\n1,a\n2,b\n")
	var served atomic.Int64
	fs := http.FileServer(http.Dir(imp))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fs.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE d")
	mustExec(t, c, "USE d")
	expectRows(t, c, "SELECT * FROM read_csv('"+srv.URL+"/h.csv') ORDER BY id", "1\ta", "2\tb")
	expectErr(t, c, "SELECT * FROM read_csv('"+srv.URL+"/missing.csv')", 1105, "404")
	if served.Load() == 0 {
		t.Fatal("the HTTP server was never asked")
	}
	// Exports to S3, read back with a glob; Parquet over HTTP needs byte ranges.
	mustExec(t, c, "CREATE TABLE t (id BIGINT, s VARCHAR(20), d DATE)")
	mustExec(t, c, "INSERT INTO t VALUES (1, 'x', '2024-01-02'), (2, NULL, NULL), (3, 'ünï', '1999-12-31')")
	mustExec(t, c, "CALL lake_export('SELECT * FROM t WHERE id < 3', 's3://"+g.Bucket+"/ex/a.parquet', 'parquet')")
	mustExec(t, c, "CALL lake_export('SELECT * FROM t WHERE id = 3', 's3://"+g.Bucket+"/ex/sub/b.parquet', 'parquet')")
	expectRows(t, c, "SELECT id, s, d FROM read_parquet('s3://"+g.Bucket+"/ex/**/*.parquet') ORDER BY id",
		"1\tx\t2024-01-02", "2\tNULL\tNULL", "3\tünï\t1999-12-31")
	expectRows(t, c, "SELECT COUNT(*) FROM read_parquet('s3://"+g.Bucket+"/ex/*.parquet')", "2")
	expectErr(t, c, "SELECT * FROM read_parquet('s3://"+g.Bucket+"/nothing/*.parquet')", 1105, "no objects match")
	mustExec(t, c, "CALL lake_export('SELECT * FROM t', 's3://"+g.Bucket+"/top.parquet', 'parquet')")
	expectRows(t, c, "SELECT COUNT(*) FROM read_parquet('s3://"+g.Bucket+"/*.parquet')", "3")
	mustExec(t, c, "CALL lake_export('SELECT * FROM t ORDER BY id', 'file://"+imp+"/t.parquet', 'parquet')")
	expectRows(t, c, "SELECT COUNT(*) FROM read_parquet('"+srv.URL+"/t.parquet')", "3")
}

// The machine's MariaDB and PostgreSQL (started by .ci/run when they are not running).
const (
	mariaURL = "mysql://root@127.0.0.1:3306/"
	pgURL    = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

func externalMariaDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("MariaDB at 127.0.0.1:3306 (root, no password) is not reachable: %v; .ci/run starts it", err)
	}
	return db
}

func TestDatabaseSourcesAndCopy(t *testing.T) {
	t.Parallel()
	maria := externalMariaDB(t)
	schema := fmt.Sprintf("lkd_sys_%d", time.Now().UnixNano())
	mustExec(t, maria, "CREATE DATABASE "+schema)
	t.Cleanup(func() { maria.Exec("DROP DATABASE " + schema) })
	mustExec(t, maria, "CREATE TABLE "+schema+".src (id INT PRIMARY KEY, name VARCHAR(20), price DECIMAL(10,2), updated DATETIME, note TEXT)")
	mustExec(t, maria, "INSERT INTO "+schema+".src VALUES (1, 'a', 1.50, '2024-01-01 10:00:00', 'ü'), (2, 'b', NULL, '2024-01-02 10:00:00', NULL), (3, 'c', 3.00, '2024-01-03 10:00:00', '🦆')")

	n := startNode(t, "")
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE d")
	mustExec(t, c, "USE d")
	src := "mysql_query(''" + mariaURL + schema + "'', ''SELECT * FROM src'')"
	expectRows(t, c, "SELECT id, name, price, updated, note FROM mysql_query('"+mariaURL+schema+"', 'SELECT * FROM src') ORDER BY id",
		"1\ta\t1.50\t2024-01-01 10:00:00\tü", "2\tb\tNULL\t2024-01-02 10:00:00\tNULL", "3\tc\t3.00\t2024-01-03 10:00:00\t🦆")

	// lake_copy creates the target and copies; append, overwrite, merge.
	rows := queryRows(t, c, "CALL lake_copy('SELECT * FROM "+src+"', 'd.copied', 'append')")
	if len(rows) != 1 || !strings.HasPrefix(rows[0], "3\t3\t") {
		t.Fatalf("lake_copy append: %q", rows)
	}
	expectRows(t, c, "SELECT COUNT(*), SUM(price) = 4.5, MAX(note) FROM copied", "3\t1\t🦆")
	mustExec(t, c, "CALL lake_copy('SELECT * FROM "+src+"', 'd.copied', 'append')")
	expectRows(t, c, "SELECT COUNT(*) FROM copied", "6")
	mustExec(t, c, "CALL lake_copy('SELECT * FROM "+src+"', 'd.copied', 'overwrite')")
	expectRows(t, c, "SELECT COUNT(*) FROM copied", "3")
	mustExec(t, c, "CALL lake_copy('SELECT * FROM "+src+"', 'd.merged', 'merge:id')")
	mustExec(t, maria, "UPDATE "+schema+".src SET name = 'B', updated = '2024-02-01 10:00:00' WHERE id = 2")
	mustExec(t, maria, "INSERT INTO "+schema+".src VALUES (4, 'd', 4.00, '2024-02-02 10:00:00', NULL)")
	mustExec(t, c, "CALL lake_copy('SELECT * FROM "+src+"', 'd.merged', 'merge:id')")
	expectRows(t, c, "SELECT id, name FROM merged ORDER BY id", "1\ta", "2\tB", "3\tc", "4\td")

	// Incremental: only rows newer than the mark move, and the mark lands with the rows.
	inc := "CALL lake_copy('SELECT * FROM " + src + "', 'd.inc', 'append', 'incremental_column=updated')"
	if rows := queryRows(t, c, inc); len(rows) != 1 || !strings.HasPrefix(rows[0], "4\t4\t") {
		t.Fatalf("first incremental lake_copy: %q", rows)
	}
	expectRows(t, c, "SELECT COUNT(*) FROM inc", "4")
	mustExec(t, maria, "INSERT INTO "+schema+".src VALUES (5, 'e', 5.00, '2024-03-01 10:00:00', NULL)")
	rows = queryRows(t, c, inc)
	if len(rows) != 1 || !strings.HasPrefix(rows[0], "1\t1\t") {
		t.Fatalf("incremental lake_copy after one new row: %q", rows)
	}
	expectRows(t, c, "SELECT id FROM inc ORDER BY id", "1", "2", "3", "4", "5")
	expectRows(t, c, "SELECT COUNT(*) FROM lake_properties('d.inc') WHERE `key` LIKE 'lakehoused.copy.hwm.%' AND value = '''2024-03-01 10:00:00'''", "1")

	// TINYINT(1) is BOOLEAN; another value is refused with the way out.
	mustExec(t, maria, "CREATE TABLE "+schema+".flags (v TINYINT(1))")
	mustExec(t, maria, "INSERT INTO "+schema+".flags VALUES (1), (5)")
	expectErr(t, c, "SELECT * FROM mysql_query('"+mariaURL+schema+"', 'SELECT v FROM flags')", 1105, "CAST(v AS SIGNED)")
	expectRows(t, c, "SELECT SUM(v) FROM mysql_query('"+mariaURL+schema+"', 'SELECT CAST(v AS SIGNED) AS v FROM flags')", "6")

	// Named connections keep the password encrypted and never show it.
	mustExec(t, c, "CALL lake_connection_create('maria', 'mysql', 'mysql://root:@127.0.0.1:3306/"+schema+"')")
	expectRows(t, c, "SELECT COUNT(*) FROM mysql_query('maria', 'SELECT * FROM src')", "5")
	mustExec(t, c, "CALL lake_connection_create('pw', 'mysql', 'mysql://someone:s3cret@127.0.0.1:3306/x')")
	for _, r := range queryRows(t, c, "SELECT name, kind, url FROM lake_connections()") {
		if strings.Contains(r, "s3cret") {
			t.Fatalf("lake_connections shows a password: %q", r)
		}
	}
	raw, err := os.ReadFile(filepath.Join(n.dir, "connections.json"))
	if err != nil || strings.Contains(string(raw), "s3cret") {
		t.Fatalf("connections file holds the password in clear (or is missing: %v)", err)
	}
	expectErr(t, c, "SELECT * FROM mysql_query('pw', 'SELECT 1')", 1105, "someone")
	expectErr(t, c, "CALL lake_connection_create('pw', 'mysql', 'mysql://a@b/c')", 1210, "already exists")
	expectErr(t, c, "SELECT * FROM postgres_query('maria', 'SELECT 1')", 1210, "mysql connection")
	mustExec(t, c, "CALL lake_connection_drop('pw')")
	expectErr(t, c, "SELECT * FROM mysql_query('pw', 'SELECT 1')", 1105, "does not exist")
	start := time.Now()
	expectErr(t, c, "SELECT * FROM mysql_query('mysql://root@127.0.0.1:1/x', 'SELECT 1')", 1105, "127.0.0.1:1")
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("an unreachable server took %v to fail", d)
	}

	// PostgreSQL.
	expectRows(t, c, "SELECT n, s FROM postgres_query('"+pgURL+"', 'SELECT g AS n, ''v'' || g AS s FROM generate_series(1, 3) g') ORDER BY n",
		"1\tv1", "2\tv2", "3\tv3")
	mustExec(t, c, "CREATE TABLE pg AS SELECT * FROM postgres_query('"+pgURL+"', 'SELECT g::bigint AS n, now()::date AS d FROM generate_series(1, 1000) g')")
	expectRows(t, c, "SELECT COUNT(*), SUM(n) FROM pg", "1000\t500500")
}

// lines renders rows as tab-separated values.
func (r *result) lines() []string {
	out := make([]string, len(r.rows))
	for i, row := range r.rows {
		parts := make([]string, len(row))
		for j, v := range row {
			parts[j] = fmtVal(v)
		}
		out[i] = strings.Join(parts, "\t")
	}
	return out
}

// TestCopyProgress holds a copy's source half-way (an HTTP server that waits) and checks
// that SHOW PROCESSLIST and /api/jobs show how far it got; then a 1M-row copy from MariaDB.
func TestCopyProgress(t *testing.T) {
	t.Parallel()
	maria := externalMariaDB(t)
	n := startNodeWith(t, "", func(c *server.Config) { c.AllowPrivateHTTP = true })
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		b.WriteString("id,v\n")
		for i := 0; i < 200_000; i++ {
			fmt.Fprintf(&b, "%d,value-%d\n", i, i)
		}
		w.Write([]byte(b.String()))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte("200000,last\n"))
	}))
	defer srv.Close()
	defer close(release)
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE d")
	done := make(chan error, 1)
	go func() {
		_, err := c.ExecContext(context.Background(), "CALL lake_copy('SELECT * FROM read_csv(''"+srv.URL+"/slow.csv'', ''header=true, columns=id BIGINT,v TEXT'')', 'd.slow', 'append')")
		done <- err
	}()
	watch := n.conn("")
	deadline := time.Now().Add(5 * time.Second)
	for {
		var shown string
		for _, r := range queryRows(t, watch, "SHOW PROCESSLIST") {
			if strings.Contains(r, "lake_copy") && strings.Contains(r, "copy progress:") {
				shown = r
			}
		}
		if strings.Contains(shown, "rows") {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the copy ended before its source was released: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("SHOW PROCESSLIST never showed the copy's progress: %q", queryRows(t, watch, "SHOW PROCESSLIST"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expectRows(t, watch, "SELECT COUNT(*) FROM d.slow", "200001")

	// A 1M-row copy from MariaDB, and how it ended in /api/jobs.
	rows := queryRows(t, watch, "CALL lake_copy('SELECT * FROM mysql_query(''mysql://root@127.0.0.1:3306/test'', ''SELECT CAST(seq AS SIGNED) AS id, CONCAT(''''row '''', seq) AS name FROM seq_1_to_1000000'')', 'd.million', 'append')")
	if len(rows) != 1 || !strings.HasPrefix(rows[0], "1000000\t1000000\t") {
		t.Fatalf("1M-row copy: %q", rows)
	}
	expectRows(t, watch, "SELECT COUNT(*), CAST(SUM(id) AS SIGNED), MAX(name) FROM d.million", "1000000\t500000500000\trow 999999")
	resp, err := http.Get("http://" + n.srv.HTTPAddr() + "/api/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	if _, err := io.Copy(&body, resp.Body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body.String(), `"table":"d.million","state":"done"`) || !strings.Contains(body.String(), `"rows_done":1000000`) {
		t.Fatalf("/api/jobs does not show the finished 1M-row copy: %s", body.String())
	}
	_ = maria
}

// TestCopySpill: a large autocommit copy writes its rows out as data files while it reads
// (here once 1,000 rows are staged, so after every 64Ki-row batch of the source); the
// commit adds them all at once, and a copy that fails or is rolled back leaves no file
// behind.
func TestCopySpill(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, "", func(c *server.Config) { c.CopySpillRows = 1000 })
	imp := filepath.Join(n.dir, "import")
	var b strings.Builder
	b.WriteString("id,v\n")
	for i := 1; i <= 200_000; i++ {
		fmt.Fprintf(&b, "%d,v%d\n", i, i)
	}
	writeFile(t, filepath.Join(imp, "rows.csv"), b.String())
	writeFile(t, filepath.Join(imp, "bad.csv"), b.String()+"200001\n")
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE d")
	mustExec(t, c, "USE d")
	dataFiles := func(table string) int {
		matches, _ := filepath.Glob(filepath.Join(n.dir, "d", table, "*.parquet"))
		return len(matches)
	}
	mustExec(t, c, "CREATE TABLE big AS SELECT * FROM read_csv('file://"+imp+"/rows.csv')")
	expectRows(t, c, "SELECT COUNT(*), CAST(SUM(id) AS SIGNED), MAX(v) FROM big", "200000\t20000100000\tv99999")
	expectRows(t, c, "SELECT COUNT(*) FROM lake_history('d.big') WHERE operation = 'WRITE'", "1")
	if files := dataFiles("big"); files < 4 {
		t.Fatalf("the copy wrote %d data files; want one per batch spilled (4)", files)
	}
	expectRows(t, c, "SELECT COUNT(*) FROM lake_files('d.big')", fmt.Sprint(dataFiles("big")))

	// A failed copy (a ragged last row, after five spills) leaves no files.
	mustExec(t, c, "CREATE TABLE keep (id BIGINT, v TEXT)")
	before := dataFiles("keep")
	expectErr(t, c, "INSERT INTO keep SELECT * FROM read_csv('file://"+imp+"/bad.csv')", 1105, "line 200002")
	expectRows(t, c, "SELECT COUNT(*) FROM keep", "0")
	if after := dataFiles("keep"); after != before {
		t.Fatalf("a failed copy left %d data files behind", after-before)
	}
	// Inside a transaction nothing spills: the transaction reads its own rows, and a
	// rollback leaves nothing.
	mustExec(t, c, "BEGIN")
	mustExec(t, c, "INSERT INTO keep SELECT * FROM read_csv('file://"+imp+"/rows.csv')")
	expectRows(t, c, "SELECT COUNT(*) FROM keep", "200000")
	mustExec(t, c, "DELETE FROM keep WHERE id > 10")
	expectRows(t, c, "SELECT COUNT(*) FROM keep", "10")
	mustExec(t, c, "ROLLBACK")
	expectRows(t, c, "SELECT COUNT(*) FROM keep", "0")
	if after := dataFiles("keep"); after != before {
		t.Fatalf("a rolled-back copy left %d data files behind", after-before)
	}
	// lake_copy overwrite spills too, and replaces the rows in one commit.
	mustExec(t, c, "CALL lake_copy('SELECT * FROM read_csv(''file://"+imp+"/rows.csv'')', 'd.big', 'overwrite')")
	expectRows(t, c, "SELECT COUNT(*), CAST(SUM(id) AS SIGNED) FROM big", "200000\t20000100000")
	if files := dataFiles("big"); files < 8 {
		t.Fatalf("%d data files after the overwrite; want the first copy's and the overwrite's", files)
	}
}
