package system_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestVersionAndHelp(t *testing.T) {
	bin := buildDaemon(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "lakehoused ") {
		t.Errorf("lakehoused version: %q %v", out, err)
	}
	out, err = exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Errorf("--help exit: %v", err)
	}
	for _, flag := range []string{"--data-dir", "--warehouse", "--mysql-addr", "--http-addr", "--log-level", "--shutdown-grace",
		"LAKEHOUSED_DATA_DIR", "LAKEHOUSED_MYSQL_ADDR", "127.0.0.1:3307", "127.0.0.1:8307"} {
		if !strings.Contains(string(out), strings.TrimPrefix(flag, "-")) {
			t.Errorf("--help does not explain %s:\n%s", flag, out)
		}
	}
	out, _ = exec.Command(bin, "frobnicate").CombinedOutput()
	if !strings.Contains(string(out), "unknown command") {
		t.Errorf("unknown command: %q", out)
	}
}

// The daemon answers /healthz, takes its settings from the environment, and on SIGTERM
// closes idle client connections and exits 0 within the grace period.
func TestDaemonLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon process")
	}
	bin := buildDaemon(t)
	dir := t.TempDir()
	mysqlAddr, httpAddr := freePort(t), freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "LAKEHOUSED_DATA_DIR="+dir, "LAKEHOUSED_MYSQL_ADDR="+mysqlAddr, "LAKEHOUSED_HTTP_ADDR="+httpAddr,
		"LAKEHOUSED_RAFT_ADDR=127.0.0.1:0")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var resp *http.Response
	var err error
	for i := 0; i < 300; i++ {
		if resp, err = http.Get("http://" + httpAddr + "/healthz"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("/healthz: %v\n%s", err, logs.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"ok"`) {
		t.Errorf("/healthz = %d %s", resp.StatusCode, body)
	}

	db := daemonDB(t, mysqlAddr, "")
	defer db.Close()
	db.SetMaxIdleConns(3)
	for _, q := range []string{"CREATE DATABASE d", "CREATE TABLE d.t (id INT)", "INSERT INTO d.t VALUES (1)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(dir + "/d/t/_delta_log/00000000000000000001.json"); err != nil {
		t.Errorf("the table is not under the data dir: %v", err)
	}
	_ = idle(db) // keep pooled connections open and idle

	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("daemon did not exit within 15 s of SIGTERM with idle clients\n%s", logs.String())
	}
	t.Logf("SIGTERM to exit with idle clients: %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(logs.String(), "lakehoused stopped") {
		t.Errorf("no shutdown log line:\n%s", logs.String())
	}
}

func idle(db *sql.DB) error {
	conns := make([]*sql.Conn, 3)
	for i := range conns {
		c, err := db.Conn(context.Background())
		if err != nil {
			return err
		}
		conns[i] = c
	}
	for _, c := range conns {
		c.Close()
	}
	return nil
}
