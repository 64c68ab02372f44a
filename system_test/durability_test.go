package system_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// buildDaemon compiles cmd/lakehoused once per test binary.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func init() {
	// The driver logs every connection the test kills on purpose.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
}

func buildDaemon(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lakehoused-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "lakehoused")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, "../cmd/lakehoused")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// daemon is a lakehoused process.
type daemon struct {
	cmd  *exec.Cmd
	addr string
}

func startDaemon(t *testing.T, bin, dir, addr string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data-dir", dir, "--mysql-addr", addr, "--http-addr", "off", "--log-level", "warn",
		"--raft-addr", "127.0.0.1:0", "--raft-timeout", "100ms")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, addr: addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("daemon did not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) kill() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_, _ = d.cmd.Process.Wait()
}

func daemonDB(t *testing.T, addr, db string) *sql.DB {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "tcp", addr, db
	c.Timeout = 5 * time.Second
	h, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestDurabilityUnderSIGKILL kills the daemon repeatedly while four clients insert with
// autocommit. Each statement inserts three rows. After every restart: every acknowledged
// statement's rows are all there, no statement is partly visible, nothing appears that was
// never sent, keys are unique, and every table opens.
func TestDurabilityUnderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a daemon process repeatedly")
	}
	bin := buildDaemon(t)
	dir := t.TempDir()
	addr := freePort(t)
	const clients, rounds = 4, 5

	d := startDaemon(t, bin, dir, addr)
	setup := daemonDB(t, addr, "")
	for _, q := range []string{
		"CREATE DATABASE dur",
		"CREATE TABLE dur.keyed (id BIGINT PRIMARY KEY, stmt BIGINT NOT NULL, payload VARCHAR(40))",
		"CREATE TABLE dur.plain (id BIGINT, stmt BIGINT NOT NULL, payload VARCHAR(40))",
	} {
		if _, err := setup.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	setup.Close()

	acked := map[int64]bool{} // statement ids acknowledged
	sent := map[int64]bool{}  // statement ids sent (acknowledged or not)
	var mu sync.Mutex
	next := int64(0)
	for round := 0; round < rounds; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				db := daemonDB(t, addr, "dur")
				defer db.Close()
				db.SetMaxOpenConns(1)
				for ctx.Err() == nil {
					mu.Lock()
					next++
					s := next
					sent[s] = true
					mu.Unlock()
					table := "keyed"
					if s%2 == 0 {
						table = "plain"
					}
					q := fmt.Sprintf("INSERT INTO %s VALUES (%d, %d, 'p%d'), (%d, %d, 'p%d'), (%d, %d, 'p%d')", table,
						s*3, s, s*3, s*3+1, s, s*3+1, s*3+2, s, s*3+2)
					if _, err := db.ExecContext(context.Background(), q); err != nil {
						if errCode(err) == 1213 {
							continue // a serialization failure: not acknowledged, try the next
						}
						return // the daemon is gone
					}
					mu.Lock()
					acked[s] = true
					mu.Unlock()
				}
			}(c)
		}
		time.Sleep(time.Duration(300+100*round) * time.Millisecond)
		d.kill()
		cancel()
		wg.Wait()

		d = startDaemon(t, bin, dir, addr)
		checkDurable(t, addr, acked, sent, round)
	}
	d.kill()
	if len(acked) < 20 {
		t.Errorf("only %d statements were acknowledged in %d rounds; the test did not exercise much", len(acked), rounds)
	}
	t.Logf("%d statements acknowledged, %d sent, over %d kills (GOMAXPROCS %d)", len(acked), len(sent), rounds, runtime.GOMAXPROCS(0))
}

func checkDurable(t *testing.T, addr string, acked, sent map[int64]bool, round int) {
	t.Helper()
	db := daemonDB(t, addr, "dur")
	defer db.Close()
	seen := map[int64]int{}
	for _, table := range []string{"keyed", "plain"} {
		rows, err := db.Query("SELECT id, stmt, payload FROM " + table)
		if err != nil {
			t.Fatalf("round %d: table %s does not open: %v", round, table, err)
		}
		ids := map[int64]bool{}
		for rows.Next() {
			var id, stmt int64
			var payload string
			if err := rows.Scan(&id, &stmt, &payload); err != nil {
				t.Fatal(err)
			}
			if ids[id] {
				t.Errorf("round %d: %s has id %d twice", round, table, id)
			}
			ids[id] = true
			if id/3 != stmt || payload != fmt.Sprintf("p%d", id) {
				t.Errorf("round %d: %s row (%d, %d, %s) is not a row any client sent", round, table, id, stmt, payload)
			}
			seen[stmt]++
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("round %d: reading %s: %v", round, table, err)
		}
		rows.Close()
	}
	for s := range acked {
		if seen[s] != 3 {
			t.Errorf("round %d: acknowledged statement %d has %d of its 3 rows", round, s, seen[s])
		}
	}
	for s, n := range seen {
		if !sent[s] {
			t.Errorf("round %d: statement %d was never sent but is visible", round, s)
		}
		if n != 3 {
			t.Errorf("round %d: statement %d is partly visible (%d of 3 rows)", round, s, n)
		}
	}
}
