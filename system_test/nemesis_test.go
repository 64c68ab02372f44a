package system_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/go-sql-driver/mysql"

	"github.com/lakehoused/lakehoused/internal/s3test"
)

// Process-level fault tests, Jepsen style: three lakehoused processes share a warehouse;
// each node has an IP of its own on loopback (127.0.0.x) and a TCP proxy in front of its
// Raft port, which can refuse the other nodes' IPs (a partition). While clients insert
// unique ids, write and read a register and move amounts between two tables through every
// node, a nemesis kills (SIGKILL) and restarts nodes, pauses them (SIGSTOP) and partitions
// the leader. After healing: every acknowledged id is present exactly once (the "set"
// check), the register history is linearizable (porcupine) and every version of the two
// tables holds the same total.

// nemesisDuration is how long the clients and the nemesis run: def (60 s on a local
// warehouse, 30 s on the S3 gateway, whose commits are slower), or LAKEHOUSED_NEMESIS.
func nemesisDuration(def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv("LAKEHOUSED_NEMESIS")); err == nil {
		return d
	}
	return def
}

func TestNemesisLocalWarehouse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemon processes")
	}
	t.Parallel()
	runNemesis(t, 11, nemesisDuration(60*time.Second), []string{"--warehouse", t.TempDir()}, nil)
}

func TestNemesisS3Warehouse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemon processes and an S3 gateway")
	}
	t.Parallel()
	g := s3test.Start(t)
	runNemesis(t, 21, nemesisDuration(30*time.Second), []string{"--warehouse", "s3://" + g.Bucket + "/wh", "--s3-endpoint", g.Endpoint, "--s3-region", "us-east-1"},
		[]string{"AWS_ACCESS_KEY_ID=" + g.AccessKey, "AWS_SECRET_ACCESS_KEY=" + g.SecretKey})
}

// proxy forwards TCP connections to a node's Raft port, refusing the source IPs blocked.
type proxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	blocked map[string]bool
	conns   map[net.Conn]string // both ends of every forwarded connection → source IP
}

func startProxy(t *testing.T, listen, target string) *proxy {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, blocked: map[string]bool{}, conns: map[net.Conn]string{}}
	t.Cleanup(func() { ln.Close(); p.block() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
	return p
}

func (p *proxy) forward(c net.Conn) {
	ip := c.RemoteAddr().(*net.TCPAddr).IP.String()
	p.mu.Lock()
	if p.blocked[ip] {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Unlock()
	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = ip, ip
	p.mu.Unlock()
	done := func() {
		c.Close()
		up.Close()
		p.mu.Lock()
		delete(p.conns, c)
		delete(p.conns, up)
		p.mu.Unlock()
	}
	go func() { io.Copy(up, c); done() }()
	io.Copy(c, up)
	done()
}

// block refuses ips from now on and cuts their open connections; no ips cuts nothing
// and unblocks everyone.
func (p *proxy) block(ips ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(ips) == 0 {
		clear(p.blocked)
		return
	}
	for _, ip := range ips {
		p.blocked[ip] = true
	}
	for c, ip := range p.conns {
		if p.blocked[ip] {
			c.Close()
		}
	}
}

// proc is one lakehoused process.
type proc struct {
	t                 *testing.T
	id, ip            string
	args, env         []string
	mysqlAddr, health string
	proxy             *proxy
	mu                sync.Mutex
	cmd               *exec.Cmd
	logs              *bytes.Buffer
}

func (p *proc) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(buildDaemon(p.t), p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	if p.logs == nil {
		p.logs = &bytes.Buffer{}
	}
	cmd.Stderr = &lockedWriter{w: p.logs}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	go cmd.Wait()
}

func (p *proc) signal(s syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(s)
		if s == syscall.SIGKILL {
			p.cmd = nil
		}
	}
}

func (p *proc) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// ready reports the leader this node knows, once it can serve ("" otherwise).
func (p *proc) ready() string {
	c := http.Client{Timeout: 500 * time.Millisecond}
	resp, err := c.Get("http://" + p.health + "/readyz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var st struct {
		Status string `json:"status"`
		Leader string `json:"leader"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil || st.Status != "ready" {
		return ""
	}
	return st.Leader
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// freePortOn reserves a port on ip.
func freePortOn(t *testing.T, ip string) string {
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func runNemesis(t *testing.T, ipBase int, dur time.Duration, warehouseArgs, env []string) {
	var nodes []*proc
	var join []string
	for i := range 3 {
		ip := fmt.Sprintf("127.0.0.%d", ipBase+i)
		p := &proc{t: t, id: fmt.Sprintf("n%d", i), ip: ip, env: env, mysqlAddr: freePort(t), health: freePort(t)}
		raftAddr := freePortOn(t, ip)
		advertise := freePortOn(t, ip)
		p.proxy = startProxy(t, advertise, raftAddr)
		join = append(join, advertise)
		p.args = append([]string{"serve", "--data-dir", filepath.Join(t.TempDir(), p.id), "--mysql-addr", p.mysqlAddr, "--http-addr", p.health,
			"--node-id", p.id, "--raft-addr", raftAddr, "--raft-advertise", advertise, "--bootstrap-expect", "3",
			"--raft-timeout", "300ms", "--log-level", "warn"}, warehouseArgs...)
		nodes = append(nodes, p)
	}
	for _, p := range nodes {
		p.args = append(p.args, "--join", strings.Join(join, ","))
		p.start()
	}
	t.Cleanup(func() {
		for _, p := range nodes {
			p.signal(syscall.SIGCONT)
			p.signal(syscall.SIGKILL)
		}
		if t.Failed() {
			for _, p := range nodes {
				t.Logf("node %s log:\n%s", p.id, tail(p.logs.String(), 4000))
			}
		}
	})
	waitReady(t, nodes, 60*time.Second)

	dbs := make([]*sql.DB, len(nodes))
	linear := make([]*sql.DB, len(nodes)) // sessions at lake_read_consistency = linearizable
	for i, p := range nodes {
		dbs[i] = nemesisDB(t, p.mysqlAddr, "leader")
		linear[i] = nemesisDB(t, p.mysqlAddr, "linearizable")
	}
	for _, q := range []string{"CREATE DATABASE jepsen", "CREATE TABLE jepsen.s (id BIGINT PRIMARY KEY)",
		"CREATE TABLE jepsen.reg (k INT PRIMARY KEY, v BIGINT)", "INSERT INTO jepsen.reg VALUES (1, 0)",
		"CREATE TABLE jepsen.a (k INT PRIMARY KEY, v BIGINT)", "CREATE TABLE jepsen.b (k INT PRIMARY KEY, v BIGINT)",
		"INSERT INTO jepsen.a VALUES (1, 1000000)", "INSERT INTO jepsen.b VALUES (1, 0)"} {
		if _, err := dbs[0].Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup

	// Set: two clients per node insert unique ids.
	var acked, unknown sync.Map
	var ackCount atomic.Int64
	for c := range 2 * len(nodes) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := dbs[c%len(nodes)]
			for k := int64(0); ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				id := int64(c)*10_000_000 + k
				if _, err := db.Exec("INSERT INTO jepsen.s VALUES (?)", id); err != nil {
					unknown.Store(id, true)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				acked.Store(id, true)
				ackCount.Add(1)
			}
		}()
	}

	// Register: one client per node writes unique values and reads them back, reads at
	// lake_read_consistency = linearizable.
	var histMu sync.Mutex
	var history []porcupine.Operation
	clock := func() int64 { return time.Since(start).Nanoseconds() }
	for c := range len(nodes) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := linear[c]
			r := rand.New(rand.NewPCG(uint64(c), 7))
			for k := int64(1); ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				op := porcupine.Operation{ClientId: c, Call: clock()}
				if r.IntN(2) == 0 {
					v := int64(c+1)*10_000_000 + k
					op.Input = regOp{write: true, value: v}
					_, err := db.Exec("UPDATE jepsen.reg SET v = ? WHERE k = 1", v)
					op.Return = clock()
					if err != nil && definitelyFailed(err) {
						time.Sleep(20 * time.Millisecond)
						continue // it did not happen
					}
					if err != nil {
						op.Return = math.MaxInt64 // it may have happened at any time since
						time.Sleep(20 * time.Millisecond)
					}
				} else {
					var v int64
					op.Input = regOp{}
					err := db.QueryRow("SELECT v FROM jepsen.reg WHERE k = 1").Scan(&v)
					op.Return = clock()
					if err != nil {
						time.Sleep(20 * time.Millisecond)
						continue // a failed read says nothing
					}
					op.Output = v
				}
				histMu.Lock()
				history = append(history, op)
				histMu.Unlock()
				time.Sleep(10 * time.Millisecond) // a history porcupine can check in seconds
			}
		}()
	}

	// Transfers: one client moves amounts from a to b in one transaction.
	var transfers atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tx, err := dbs[i%len(nodes)].Begin()
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			_, err1 := tx.Exec("UPDATE jepsen.a SET v = v - 7 WHERE k = 1")
			_, err2 := tx.Exec("UPDATE jepsen.b SET v = v + 7 WHERE k = 1")
			if err1 == nil && err2 == nil && tx.Commit() == nil {
				transfers.Add(1)
			} else {
				tx.Rollback()
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()

	// The nemesis.
	leader := func() int {
		for _, p := range nodes {
			if !p.alive() {
				continue
			}
			if l := p.ready(); l != "" {
				for i, q := range nodes {
					if q.id == l {
						return i
					}
				}
			}
		}
		return -1
	}
	var faults []string
	for round := 0; time.Since(start) < dur; round++ {
		time.Sleep(time.Second)
		l := leader()
		if l < 0 {
			continue
		}
		switch round % 4 {
		case 0:
			faults = append(faults, "kill leader "+nodes[l].id)
			nodes[l].signal(syscall.SIGKILL)
			time.Sleep(1500 * time.Millisecond)
			nodes[l].start()
		case 1:
			f := (l + 1 + round%2) % len(nodes)
			faults = append(faults, "kill follower "+nodes[f].id)
			nodes[f].signal(syscall.SIGKILL)
			time.Sleep(time.Second)
			nodes[f].start()
		case 2:
			faults = append(faults, "pause leader "+nodes[l].id)
			nodes[l].signal(syscall.SIGSTOP)
			time.Sleep(2 * time.Second)
			nodes[l].signal(syscall.SIGCONT)
		case 3:
			faults = append(faults, "partition leader "+nodes[l].id)
			var others []string
			for i, p := range nodes {
				if i != l {
					others = append(others, p.ip)
					p.proxy.block(nodes[l].ip)
				}
			}
			nodes[l].proxy.block(others...)
			time.Sleep(3 * time.Second)
			for _, p := range nodes {
				p.proxy.block()
			}
		}
		waitReady(t, nodes, 30*time.Second)
	}
	close(stop)
	wg.Wait()
	waitReady(t, nodes, 30*time.Second)
	t.Logf("%v of faults: %s", time.Since(start).Round(time.Second), strings.Join(faults, ", "))

	// The set: every acknowledged id exactly once, on every node.
	for i, db := range dbs {
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(context.Background(), "SET lake_read_consistency = 'linearizable'"); err != nil {
			t.Fatal(err)
		}
		rows, err := conn.QueryContext(context.Background(), "SELECT id FROM jepsen.s")
		if err != nil {
			t.Fatalf("reading the set on %s: %v", nodes[i].id, err)
		}
		seen := map[int64]int{}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			seen[id]++
		}
		rows.Close()
		conn.Close()
		lost, dup, extra := 0, 0, 0
		for id, k := range seen {
			if k > 1 {
				dup++
			}
			if _, ok := acked.Load(id); !ok {
				if _, ok := unknown.Load(id); !ok {
					extra++ // never attempted
				}
			}
		}
		acked.Range(func(k, _ any) bool {
			if seen[k.(int64)] != 1 {
				lost++
			}
			return true
		})
		if lost+dup+extra > 0 {
			t.Errorf("node %s: %d acknowledged ids lost, %d duplicated, %d never written (of %d acknowledged, %d read)", nodes[i].id, lost, dup, extra, ackCount.Load(), len(seen))
		}
		if i == 0 {
			t.Logf("set: %d inserts acknowledged, %d present (indeterminate ones included)", ackCount.Load(), len(seen))
		}
	}
	if ackCount.Load() < 100 {
		t.Errorf("only %d inserts acknowledged in %v: the cluster made too little progress", ackCount.Load(), dur)
	}

	// The register: linearizable.
	model := porcupine.Model{
		Init: func() any { return int64(0) },
		Step: func(state, input, output any) (bool, any) {
			in := input.(regOp)
			if in.write {
				return true, in.value
			}
			return output.(int64) == state.(int64), state
		},
	}
	res := porcupine.CheckOperationsTimeout(model, history, 30*time.Second)
	t.Logf("register: %d operations, linearizability check: %v", len(history), res)
	if res == porcupine.Illegal {
		t.Errorf("the register history is not linearizable")
	}

	// Transfers: at every version, a + b holds the starting total.
	var va, vb int64
	if err := dbs[0].QueryRow("SELECT MAX(version) FROM lake_history('jepsen.a')").Scan(&va); err != nil {
		t.Fatal(err)
	}
	if err := dbs[0].QueryRow("SELECT MAX(version) FROM lake_history('jepsen.b')").Scan(&vb); err != nil {
		t.Fatal(err)
	}
	if va != vb {
		t.Errorf("after %d transfers the tables are at versions %d and %d", transfers.Load(), va, vb)
	}
	for k := int64(1); k <= min(va, vb); k++ {
		var sum int64
		q := fmt.Sprintf("SELECT (SELECT v FROM jepsen.a AS OF %d WHERE k = 1) + (SELECT v FROM jepsen.b AS OF %d WHERE k = 1)", k, k)
		if err := dbs[0].QueryRow(q).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		if sum != 1000000 {
			t.Fatalf("at version %d the two tables hold %d, not 1000000", k, sum)
		}
	}
	t.Logf("transfers: %d committed, %d versions checked", transfers.Load(), va)
}

// definitelyFailed tells errors of statements that did not run: a lost conflict, a node
// that refused the connection, a read level that could not be met before the statement.
func definitelyFailed(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "onflict") || strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "cannot read at lake_read_consistency")
}

type regOp struct {
	write bool
	value int64
}

// waitReady waits until every node process that runs serves.
func waitReady(t *testing.T, nodes []*proc, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ready := true
		for _, p := range nodes {
			if p.alive() && p.ready() == "" {
				ready = false
			}
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster is not ready after %v", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nemesisDB is a client of one node that gives up quickly on a dead or paused node.
func nemesisDB(t *testing.T, addr, consistency string) *sql.DB {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr = "root", "tcp", addr
	c.Params = map[string]string{"lake_read_consistency": "'" + consistency + "'"}
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 2*time.Second, 10*time.Second, 10*time.Second
	c.InterpolateParams = true
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(8)
	db.SetConnMaxLifetime(0)
	t.Cleanup(func() { db.Close() })
	return db
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestJoinNobodyAnswers: a daemon told to join addresses where nobody answers retries with
// backoff, saying so in its log, and exits non-zero with an error that says what to do.
func TestJoinNobodyAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon process")
	}
	t.Parallel()
	cmd := exec.Command(buildDaemon(t), "serve", "--data-dir", t.TempDir(), "--mysql-addr", freePort(t), "--http-addr", "off",
		"--raft-addr", freePort(t), "--join", freePort(t)+","+freePort(t), "--join-timeout", "3s", "--log-level", "warn")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("the daemon started without a cluster: %s", out)
	}
	for _, want := range []string{"no cluster answered yet; retrying", "no cluster answered at", "--bootstrap-expect"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("gave up after %v with a 3 s timeout", d)
	}
}
