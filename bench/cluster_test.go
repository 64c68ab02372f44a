package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/lakehoused/lakehoused/server"
)

// BenchmarkCluster measures the cluster issue's figures: single-row INSERT latency through
// the Raft coordinator (a cluster of one, and three nodes on loopback through the leader
// and through a follower) against storage alone; failover time from a leader's SIGKILL to
// the first successful write (p50 of 10, real processes); point-read throughput served by
// one node against three.
func BenchmarkCluster(b *testing.B) {
	onlyPart(b, "cluster")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(cfg server.Config) *server.Server {
		cfg.DataDir, cfg.MySQLAddr, cfg.HTTPAddr, cfg.Logger, cfg.Version = benchDir(b), "127.0.0.1:0", "127.0.0.1:0", log, "bench"
		srv, err := server.Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(srv.Shutdown)
		return srv
	}

	// Latency.
	off := start(server.Config{RaftAddr: "off"})
	one := start(server.Config{})
	wh := benchDir(b)
	three := startThree(b, start, wh)
	var leader, follower *server.Server
	for _, s := range three {
		if s.IsLeader() {
			leader = s
		} else {
			follower = s
		}
	}
	setupKV(b, off.MySQLAddr(), 10_000)
	setupKV(b, one.MySQLAddr(), 0)
	setupKV(b, leader.MySQLAddr(), 10_000)
	for _, c := range []struct {
		name string
		srv  *server.Server
	}{{"storage_only", off}, {"cluster_of_one", one}, {"three_nodes_via_leader", leader}, {"three_nodes_via_follower", follower}} {
		for _, clients := range []int{1, 4} {
			p50, p99, n := insertLatency(b, c.srv.MySQLAddr(), clients, 3*time.Second)
			figure("cluster_insert_%s_%dclient: %d inserts in 3s, p50 %s p99 %s (goal p50 <= 5ms on three nodes)", c.name, clients, n, ms(p50), ms(p99))
		}
	}

	// Read throughput: point reads from 12 clients on one node, then spread over three.
	var addrs []string
	for _, s := range three {
		addrs = append(addrs, s.MySQLAddr())
	}
	r0 := pointReads(b, []string{off.MySQLAddr()}, 12, 3*time.Second)
	figure("cluster_point_reads_storage_only: 12 clients x 3s on a node without the coordinator: %.0f reads/s", r0)
	r1 := pointReads(b, addrs[:1], 12, 3*time.Second)
	r3 := pointReads(b, addrs, 12, 3*time.Second)
	figure("cluster_point_reads: 12 clients x 3s: one node %.0f reads/s, three nodes %.0f reads/s (%.2fx; one machine of 2 cores runs all three)", r1, r3, r3/r1)

	failover(b)
}

// startThree starts three in-process nodes sharing wh.
func startThree(b *testing.B, start func(server.Config) *server.Server, wh string) []*server.Server {
	var addrs []string
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		l.Close()
	}
	out := make([]*server.Server, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = start(server.Config{Warehouse: wh, NodeID: fmt.Sprintf("n%d", i), RaftAddr: addrs[i], Join: addrs, BootstrapExpect: 3})
		}()
	}
	wg.Wait()
	return out
}

func benchDB(b *testing.B, addr string, conns int) *sql.DB {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "tcp", addr, ""
	c.InterpolateParams = true
	c.Timeout, c.ReadTimeout = 2*time.Second, 10*time.Second
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	b.Cleanup(func() { db.Close() })
	return db
}

// setupKV makes kv.t (id BIGINT PRIMARY KEY, v BIGINT) with rows rows.
func setupKV(b *testing.B, addr string, rows int) {
	db := benchDB(b, addr, 1)
	mustExec(b, db, "CREATE DATABASE kv")
	mustExec(b, db, "CREATE TABLE kv.t (id BIGINT PRIMARY KEY, v BIGINT)")
	mustExec(b, db, "CREATE TABLE kv.ins (id BIGINT PRIMARY KEY, v BIGINT)")
	for i := 0; i < rows; i += 1000 {
		var vals []string
		for j := i; j < min(i+1000, rows); j++ {
			vals = append(vals, fmt.Sprintf("(%d, %d)", j, j*7))
		}
		mustExec(b, db, "INSERT INTO kv.t VALUES "+strings.Join(vals, ","))
	}
}

var insertSeq atomic.Int64

func insertLatency(b *testing.B, addr string, clients int, dur time.Duration) (p50, p99 time.Duration, n int) {
	db := benchDB(b, addr, clients)
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	end := time.Now().Add(dur)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			for time.Now().Before(end) {
				s := time.Now()
				if _, err := db.Exec("INSERT INTO kv.ins VALUES (?, 1)", insertSeq.Add(1)); err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(s))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return percentile(all, .5), percentile(all, .99), len(all)
}

func pointReads(b *testing.B, addrs []string, clients int, dur time.Duration) float64 {
	var dbs []*sql.DB
	for _, a := range addrs {
		dbs = append(dbs, benchDB(b, a, clients))
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(dur)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := dbs[c%len(dbs)]
			for i := int64(c); time.Now().Before(end); i += 7919 {
				var v int64
				if err := db.QueryRow("SELECT v FROM kv.t WHERE id = ?", i%10_000).Scan(&v); err != nil {
					b.Error(err)
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds()
}

// failover kills the leader of three daemon processes ten times and times the first
// successful write on a surviving node after each kill.
func failover(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "lakehoused")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/lakehoused").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	wh := benchDir(b)
	type daemon struct {
		args        []string
		cmd         *exec.Cmd
		mysql, http string
		id          string
	}
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	var ds []*daemon
	var raft []string
	for i := range 3 {
		d := &daemon{mysql: free(), http: free(), id: fmt.Sprintf("n%d", i)}
		r := free()
		raft = append(raft, r)
		d.args = []string{"serve", "--data-dir", benchDir(b), "--warehouse", wh, "--mysql-addr", d.mysql, "--http-addr", d.http,
			"--node-id", d.id, "--raft-addr", r, "--bootstrap-expect", "3", "--log-level", "error"}
		ds = append(ds, d)
	}
	run := func(d *daemon) {
		d.cmd = exec.Command(bin, append(d.args, "--join", strings.Join(raft, ","))...)
		if err := d.cmd.Start(); err != nil {
			b.Fatal(err)
		}
		go d.cmd.Wait()
	}
	for _, d := range ds {
		run(d)
	}
	b.Cleanup(func() {
		for _, d := range ds {
			if d.cmd != nil {
				d.cmd.Process.Kill()
			}
		}
	})
	readyLeader := func(d *daemon) string {
		c := http.Client{Timeout: 300 * time.Millisecond}
		resp, err := c.Get("http://" + d.http + "/readyz")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var st struct{ Status, Leader string }
		if json.NewDecoder(resp.Body).Decode(&st) != nil || st.Status != "ready" {
			return ""
		}
		return st.Leader
	}
	waitAll := func() string {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			leader, ok := "", true
			for _, d := range ds {
				l := readyLeader(d)
				ok = ok && l != ""
				leader = l
			}
			if ok {
				return leader
			}
		}
		b.Fatal("the cluster did not become ready")
		return ""
	}
	leader := waitAll()
	setupKV(b, ds[0].mysql, 0)
	var times []time.Duration
	for range 10 {
		var victim *daemon
		var survivor *daemon
		for _, d := range ds {
			if d.id == leader {
				victim = d
			} else {
				survivor = d
			}
		}
		db := benchDB(b, survivor.mysql, 1)
		victim.cmd.Process.Signal(syscall.SIGKILL)
		victim.cmd = nil
		killed := time.Now()
		for time.Since(killed) < 30*time.Second {
			if _, err := db.Exec("INSERT INTO kv.ins VALUES (?, 2)", insertSeq.Add(1)); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		times = append(times, time.Since(killed))
		db.Close()
		run(victim)
		leader = waitAll()
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	var list []string
	for _, d := range times {
		list = append(list, ms(d))
	}
	figure("cluster_failover: leader SIGKILL to first write on a survivor, 10 runs: p50 %s, max %s (goal p50 <= 3s; --raft-timeout 500ms); %s",
		ms(percentile(times, .5)), ms(times[len(times)-1]), strings.Join(list, " "))
}
