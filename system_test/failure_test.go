package system_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/server"
	"github.com/lakehoused/lakehoused/storage"
)

// A corrupted commit file or a missing data file makes that table report the problem;
// other tables keep working, and so does the connection.
func TestDamagedTablesAreIsolated(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	c := n.conn("")
	for _, q := range []string{
		"CREATE DATABASE d", "USE d",
		"CREATE TABLE good (id INT)", "INSERT INTO good VALUES (1)",
		"CREATE TABLE badlog (id INT)", "INSERT INTO badlog VALUES (1)",
		"CREATE TABLE nofile (id INT)", "INSERT INTO nofile VALUES (1)",
	} {
		mustExec(t, c, q)
	}
	// Corrupt the newest commit of badlog.
	logFile := filepath.Join(n.dir, "d", "badlog", "_delta_log", fmt.Sprintf("%020d.json", 1))
	if err := os.WriteFile(logFile, []byte("{\"add\": this is not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Remove the data file of nofile.
	files, _ := filepath.Glob(filepath.Join(n.dir, "d", "nofile", "*.parquet"))
	if len(files) != 1 {
		t.Fatalf("expected one data file, found %v", files)
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	// The node must reopen such tables too: restart it on the same folder.
	n.stop()
	n = startNode(t, n.dir)
	c = n.conn("d")

	ctx := context.Background()
	_, err := readQuery(ctx, c, "SELECT * FROM badlog")
	if err == nil || !strings.Contains(err.Error(), "badlog") || !strings.Contains(err.Error(), "00000000000000000001.json") {
		t.Errorf("corrupt log: want an error naming the table and the commit file, got %v", err)
	}
	_, err = readQuery(ctx, c, "SELECT * FROM nofile")
	if err == nil || !strings.Contains(err.Error(), filepath.Base(files[0])) {
		t.Errorf("missing data file: want an error naming the file, got %v", err)
	}
	res, err := readQuery(ctx, c, "SELECT id FROM good")
	if err != nil || len(res.rows) != 1 {
		t.Fatalf("the healthy table must keep working: %v %v", res, err)
	}
	res, err = readQuery(ctx, c, "SHOW TABLES")
	if err != nil || len(res.rows) != 3 {
		t.Fatalf("SHOW TABLES must list every table: %v %v", res, err)
	}
}

// faultStore fails data-file writes with ENOSPC while full is set.
type faultStore struct {
	storage.Store
	full *atomic.Bool
}

func (f faultStore) Put(ctx context.Context, key string, data []byte) error {
	if f.full.Load() && strings.HasSuffix(key, ".parquet") {
		return fmt.Errorf("storage: put %s: %w", key, syscall.ENOSPC)
	}
	return f.Store.Put(ctx, key, data)
}

func (f faultStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if f.full.Load() {
		return fmt.Errorf("storage: put %s: %w", key, syscall.ENOSPC)
	}
	return f.Store.PutIfAbsent(ctx, key, data)
}

// A full disk fails the statement; nothing is referenced, no data file is left behind, the
// table stays readable and the connection runs the next statement.
func TestDiskFullFailsTheStatementCleanly(t *testing.T) {
	t.Parallel()
	// Through the Raft coordinator (the default): a ratified commit that cannot be
	// published is undone. And without it, straight to storage.
	t.Run("raft", func(t *testing.T) { t.Parallel(); testDiskFull(t, "") })
	t.Run("storage", func(t *testing.T) { t.Parallel(); testDiskFull(t, "off") })
}

func testDiskFull(t *testing.T, raftAddr string) {
	var full atomic.Bool
	dir := t.TempDir()
	srv, err := server.Start(context.Background(), server.Config{
		DataDir: dir, MySQLAddr: "127.0.0.1:0", HTTPAddr: "off", Version: "test", RaftAddr: raftAddr, RaftTimeout: 100 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		WrapStore: func(s storage.Store) storage.Store { return faultStore{s, &full} },
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, srv: srv, dir: dir}
	t.Cleanup(n.stop)
	c := n.conn("")
	for _, q := range []string{"CREATE DATABASE d", "USE d", "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(10))", "INSERT INTO t VALUES (1, 'a')"} {
		mustExec(t, c, q)
	}
	before, _ := filepath.Glob(filepath.Join(dir, "d", "t", "*.parquet"))

	full.Store(true)
	for _, q := range []string{"INSERT INTO t VALUES (2, 'b'), (3, 'c')", "UPDATE t SET s = 'z' WHERE id = 1", "DELETE FROM t"} {
		_, err = c.ExecContext(context.Background(), q)
		if err == nil || !strings.Contains(err.Error(), "no space left on device") {
			t.Errorf("%s on a full disk: want an error saying so, got %v", q, err)
		}
	}
	full.Store(false)

	after, _ := filepath.Glob(filepath.Join(dir, "d", "t", "*.parquet"))
	if len(after) != len(before) {
		t.Errorf("failed statements left data files behind: before %v, after %v", before, after)
	}
	res, err := readQuery(context.Background(), c, "SELECT id, s FROM t")
	if err != nil || len(res.rows) != 1 || fmtVal(res.rows[0][1]) != "a" {
		t.Fatalf("table after failed writes: %v %v", res, err)
	}
	mustExec(t, c, "INSERT INTO t VALUES (2, 'b')")
	res, _ = readQuery(context.Background(), c, "SELECT COUNT(*) FROM t")
	if fmtVal(res.rows[0][0]) != "2" {
		t.Errorf("count after recovery = %v, want 2", res.rows[0][0])
	}
}

// AS OF ? in a server-side prepared statement is refused with a clear error instead of
// crashing the connection; the same connection then works.
func TestAsOfParameterIsRefused(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	db := n.db("")
	db.SetMaxOpenConns(1)
	for _, q := range []string{"CREATE DATABASE d", "CREATE TABLE d.t (id INT)", "INSERT INTO d.t VALUES (1)"} {
		mustExec(t, db, q)
	}
	// go-sql-driver prepares on the server whenever there are arguments.
	_, err := db.Query("SELECT * FROM d.t AS OF ?", 1)
	if err == nil || errCode(err) != 1235 || !strings.Contains(err.Error(), "AS OF ?") {
		t.Fatalf("want error 1235 about AS OF ?, got %v", err)
	}
	_, err = db.Exec("PREPARE s FROM 'SELECT * FROM d.t AS OF TIMESTAMP(?)'")
	if err == nil || errCode(err) != 1235 {
		t.Fatalf("PREPARE with AS OF ?: want error 1235, got %v", err)
	}
	var id int
	if err := db.QueryRow("SELECT id FROM d.t AS OF 1").Scan(&id); err != nil || id != 1 {
		t.Fatalf("literal AS OF after the error: %v %v", id, err)
	}
	if err := db.QueryRow("SELECT id FROM d.t WHERE id = ?", 1).Scan(&id); err != nil {
		t.Fatalf("prepared statement after the error: %v", err)
	}
}

// Closing: idle pooled connections do not hold shutdown up beyond the grace period.
func TestShutdownClosesIdleConnections(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	db := n.db("")
	db.SetMaxIdleConns(4)
	for i := 0; i < 4; i++ {
		mustExec(t, db, "SELECT 1")
	}
	start := time.Now()
	n.stop() // grace is 1 s in tests
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown with idle clients took %v", d)
	}
	if err := db.Ping(); err == nil {
		t.Errorf("connections still served after shutdown")
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ping hung: %v", err)
	}
}
