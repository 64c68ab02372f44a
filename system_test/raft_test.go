package system_test

import (
	"testing"
)

// TestRaftNodeRestart: a node (whose commits go through its Raft coordinator) restarts from
// its data dir (Raft state included) with every acknowledged row, takes new commits, and a
// dropped table's name (and folder) can be used again.
func TestRaftNodeRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, dir)
	c := n.conn("")
	for _, q := range []string{"CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY, s VARCHAR(10))",
		"INSERT INTO d.t VALUES (1, 'a')", "INSERT INTO d.t VALUES (2, 'b')", "UPDATE d.t SET s = 'z' WHERE id = 1",
		"CREATE TABLE d.gone (x INT)", "INSERT INTO d.gone VALUES (1)", "DROP TABLE d.gone"} {
		mustExec(t, c, q)
	}
	c.Close()
	n.stop()

	n = startNode(t, dir)
	c = n.conn("")
	expectRows(t, c, "SELECT id, s FROM d.t ORDER BY id", "1\tz", "2\tb")
	mustExec(t, c, "INSERT INTO d.t VALUES (3, 'c')")
	mustExec(t, c, "CREATE TABLE d.gone (x INT)")
	mustExec(t, c, "INSERT INTO d.gone VALUES (7)")
	expectRows(t, c, "SELECT COUNT(*) FROM d.t", "3")
	expectRows(t, c, "SELECT x FROM d.gone", "7")
}
