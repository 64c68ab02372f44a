package system_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/server"
)

// startCluster starts size nodes in this process that share the warehouse wh and find each
// other with --join and --bootstrap-expect, as separate machines would.
func startCluster(t *testing.T, size int, wh string) []*node {
	t.Helper()
	var addrs []string
	for range size {
		addrs = append(addrs, freePort(t))
	}
	nodes := make([]*node, size)
	var wg sync.WaitGroup
	for i := range size {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i] = startNodeWith(t, "", func(c *server.Config) {
				c.Warehouse, c.NodeID, c.RaftAddr = wh, fmt.Sprintf("n%d", i), addrs[i]
				c.Join, c.BootstrapExpect = addrs, size
				c.RaftTimeout = 300 * time.Millisecond
			})
		}()
	}
	wg.Wait()
	return nodes
}

// TestClusterOfThreeNodes: three nodes sharing one warehouse have one catalog and one set of
// tables: a table made on one is written through every one (followers forward commits to
// the leader) and read the same from every one; keys stay unique across nodes; when the
// leader goes, the others go on.
func TestClusterOfThreeNodes(t *testing.T) {
	t.Parallel()
	wh := t.TempDir()
	nodes := startCluster(t, 3, wh)
	c0 := nodes[0].conn("")
	mustExec(t, c0, "CREATE DATABASE shop")
	c1 := nodes[1].conn("")
	mustExec(t, c1, "CREATE TABLE shop.orders (id INT PRIMARY KEY, node VARCHAR(5), qty INT)")
	id := 0
	for round := range 3 {
		for i, n := range nodes {
			id++
			mustExec(t, n.conn(""), fmt.Sprintf("INSERT INTO shop.orders VALUES (%d, 'n%d', %d)", id, i, round))
		}
	}
	for _, n := range nodes {
		expectRows(t, n.conn(""), "SELECT COUNT(*), SUM(qty), COUNT(DISTINCT node) FROM shop.orders", "9\t9\t3")
	}
	// Auto-compaction runs on the leader only, for commits made through every node.
	waitFor(t, func() bool {
		var files int
		err := c1.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM lake_files('shop.orders')").Scan(&files)
		return err == nil && files == 1
	})
	for _, n := range nodes {
		var jobs struct {
			Jobs []map[string]any `json:"jobs"`
		}
		getJSON(t, "http://"+n.srv.HTTPAddr()+"/api/jobs", 200, &jobs)
		if n.srv.IsLeader() != (len(jobs.Jobs) > 0) {
			t.Fatalf("node leads: %v; its jobs: %v", n.srv.IsLeader(), jobs.Jobs)
		}
	}

	// A key written through one node is a duplicate through another.
	if _, err := nodes[2].conn("").ExecContext(context.Background(), "INSERT INTO shop.orders VALUES (1, 'dup', 0)"); err == nil || errCode(err) != 1062 {
		t.Fatalf("duplicate key through another node: %v", err)
	}
	mustExec(t, c1, "UPDATE shop.orders SET qty = qty + 10 WHERE node = 'n0'")
	expectRows(t, nodes[2].conn(""), "SELECT SUM(qty) FROM shop.orders", "39")

	// Dropped on one node, gone on the others; the name can be used again.
	mustExec(t, c0, "CREATE TABLE shop.tmp (x INT)")
	mustExec(t, nodes[2].conn(""), "INSERT INTO shop.tmp VALUES (1)")
	mustExec(t, c1, "DROP TABLE shop.tmp")
	waitFor(t, func() bool {
		_, err := nodes[2].conn("").ExecContext(context.Background(), "SELECT * FROM shop.tmp")
		return err != nil && strings.Contains(err.Error(), "not found")
	})
	mustExec(t, nodes[2].conn(""), "CREATE TABLE shop.tmp (y INT)")
	mustExec(t, c0, "INSERT INTO shop.tmp VALUES (5)")
	expectRows(t, c1, "SELECT y FROM shop.tmp", "5")

	// Every read consistency level serves; a bad one is refused and names the good ones.
	for _, level := range []string{"local", "leader", "linearizable"} {
		c := nodes[2].conn("")
		mustExec(t, c, "SET lake_read_consistency = '"+level+"'")
		expectRows(t, c, "SELECT COUNT(*) FROM shop.orders", "9")
	}
	if _, err := nodes[2].conn("").ExecContext(context.Background(), "SET lake_read_consistency = 'eventual'"); err == nil || !strings.Contains(err.Error(), "eventual") {
		t.Fatalf("a bad read consistency: %v", err)
	}

	// Membership, seen from a follower: SQL and HTTP agree.
	follower := nodes[0]
	if follower.srv.IsLeader() {
		follower = nodes[1]
	}
	fc := follower.conn("")
	expectRows(t, fc, "SELECT id, role, applied_index > 0, last_contact IS NOT NULL FROM lake_cluster_nodes() ORDER BY id",
		"n0\tvoter\t1\t1", "n1\tvoter\t1\t1", "n2\tvoter\t1\t1")
	expectRows(t, fc, "SELECT COUNT(*) FROM lake_cluster_nodes() WHERE leader", "1")
	var api struct {
		Nodes []struct {
			ID        string `json:"id"`
			Leader    bool   `json:"leader"`
			Reachable bool   `json:"reachable"`
		} `json:"nodes"`
	}
	getJSON(t, "http://"+follower.srv.HTTPAddr()+"/api/cluster/nodes", 200, &api)
	if len(api.Nodes) != 3 || !api.Nodes[0].Reachable {
		t.Fatalf("/api/cluster/nodes: %+v", api)
	}
	var ready map[string]any
	getJSON(t, "http://"+follower.srv.HTTPAddr()+"/readyz", 200, &ready)
	if ready["status"] != "ready" || ready["leader"] == "" {
		t.Fatalf("/readyz: %v", ready)
	}
	for _, bad := range []struct{ q, want string }{
		{"CALL lake_cluster_remove('n7')", "there is no node \"n7\""},
		{"CALL lake_cluster_join('n7', '" + freePort(t) + "')", "does not answer"},
		{"CALL lake_cluster_join('n1', '127.0.0.1:1')", "already in the cluster"},
	} {
		if _, err := fc.ExecContext(context.Background(), bad.q); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("%s: %v, want an error saying %q", bad.q, err, bad.want)
		}
	}

	// A fourth node joins later through any member; one with its own warehouse is refused.
	extra := startNodeWith(t, "", func(c *server.Config) {
		c.Warehouse, c.NodeID, c.RaftAddr, c.Join = wh, "n3", freePort(t), []string{nodes[0].srv.RaftAddr()}
		c.RaftTimeout = 300 * time.Millisecond
	})
	expectRows(t, extra.conn(""), "SELECT COUNT(*) FROM shop.orders", "9")
	expectRows(t, fc, "SELECT COUNT(*) FROM lake_cluster_nodes()", "4")
	_, err := server.Start(context.Background(), server.Config{DataDir: t.TempDir(), MySQLAddr: "127.0.0.1:0", HTTPAddr: "off",
		NodeID: "n4", RaftAddr: freePort(t), Join: []string{nodes[1].srv.RaftAddr()}, JoinTimeout: 5 * time.Second, Logger: quietLog()})
	if err == nil || !strings.Contains(err.Error(), "same warehouse") {
		t.Fatalf("a node with a warehouse of its own joined: %v", err)
	}
	mustExec(t, fc, "CALL lake_cluster_remove('n3')")
	extra.stop()

	// The leader goes; a new one is elected and writes go on through the others.
	lead := -1
	for i, n := range nodes {
		if n.srv.IsLeader() {
			lead = i
		}
	}
	if lead < 0 {
		t.Fatal("no node leads")
	}
	nodes[lead].stop()
	start := time.Now()
	for i, n := range nodes {
		if i == lead {
			continue
		}
		id++
		mustExec(t, n.conn(""), fmt.Sprintf("INSERT INTO shop.orders VALUES (%d, 'n%d', 100)", id, i))
	}
	t.Logf("writes went on %v after the leader stopped", time.Since(start))
	for i, n := range nodes {
		if i != lead {
			expectRows(t, n.conn(""), "SELECT COUNT(*) FROM shop.orders", "11")
		}
	}
}

// waitFor polls cond for up to 20 s (a loaded machine compacts late).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// getJSON GETs url, expecting status, and decodes the body into v.
func getJSON(t *testing.T, url string, status int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, body, status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestTransfersAcrossTablesAreAtomic: transactions that move an amount from one table to
// another, from every node at once and while the leader stops, commit both tables or
// neither: at every version k, a@k + b@k is the starting total.
func TestTransfersAcrossTablesAreAtomic(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, t.TempDir())
	setup := nodes[0].conn("")
	for _, q := range []string{"CREATE DATABASE bank", "CREATE TABLE bank.a (id INT PRIMARY KEY, v INT)", "CREATE TABLE bank.b (id INT PRIMARY KEY, v INT)",
		"INSERT INTO bank.a VALUES (1, 1000)", "INSERT INTO bank.b VALUES (1, 0)"} {
		mustExec(t, setup, q)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	committed, failed := 0, 0
	stop := make(chan struct{})
	for i, n := range nodes {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db := n.db("bank")
				for {
					select {
					case <-stop:
						return
					default:
					}
					tx, err := db.Begin()
					if err != nil {
						if i == 0 { // the node that stops
							return
						}
						continue
					}
					_, err1 := tx.Exec("UPDATE a SET v = v - 3 WHERE id = 1")
					_, err2 := tx.Exec("UPDATE b SET v = v + 3 WHERE id = 1")
					err = errors.Join(err1, err2)
					if err == nil {
						err = tx.Commit()
					} else {
						tx.Rollback()
					}
					mu.Lock()
					if err == nil {
						committed++
					} else {
						failed++
					}
					mu.Unlock()
				}
			}()
		}
	}
	time.Sleep(1500 * time.Millisecond)
	lead := -1
	for i, n := range nodes {
		if n.srv.IsLeader() {
			lead = i
		}
	}
	nodes[lead].stop()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	reader := nodes[(lead+1)%3].conn("bank")
	var va, vb int64
	if err := reader.QueryRowContext(context.Background(), "SELECT MAX(version) FROM lake_history('bank.a')").Scan(&va); err != nil {
		t.Fatal(err)
	}
	if err := reader.QueryRowContext(context.Background(), "SELECT MAX(version) FROM lake_history('bank.b')").Scan(&vb); err != nil {
		t.Fatal(err)
	}
	if va != vb || va < 3 {
		t.Fatalf("versions %d and %d after %d transfers (%d failed)", va, vb, committed, failed)
	}
	for k := int64(1); k <= va; k++ {
		var sum int64
		q := fmt.Sprintf("SELECT (SELECT v FROM a AS OF %d WHERE id = 1) + (SELECT v FROM b AS OF %d WHERE id = 1)", k, k)
		if err := reader.QueryRowContext(context.Background(), q).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		if sum != 1000 {
			t.Fatalf("at version %d the tables hold %d, not 1000", k, sum)
		}
	}
	t.Logf("%d transfers committed, %d failed (conflicts, the stopped leader); %d versions checked", committed, failed, va)
}
