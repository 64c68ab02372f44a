package system_test

import (
	"context"
	"fmt"
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
	nodes := startCluster(t, 3, t.TempDir())
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

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
