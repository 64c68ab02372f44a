package system_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestPruningOnNonKeyColumns: a WHERE on any numeric, decimal, date or datetime column skips
// the files whose statistics exclude it, and the answer is the same as without pruning.
func TestPruningOnNonKeyColumns(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	c := n.conn("")
	mustExec(t, c, "CREATE DATABASE p")
	mustExec(t, c, "USE p")
	mustExec(t, c, "CREATE TABLE t (id INT PRIMARY KEY, v BIGINT, d DATE, ts DATETIME, price DECIMAL(8,2), f DOUBLE, s VARCHAR(10), b BOOLEAN, ci VARCHAR(10) COLLATE utf8mb4_0900_ai_ci) COMMENT 'delta.autoOptimize.autoCompact=false'")
	// Four files, each holding one disjoint range of every column.
	for i := 0; i < 4; i++ {
		var vals []string
		for j := 0; j < 10; j++ {
			k := i*10 + j
			vals = append(vals, fmt.Sprintf("(%d, %d, '2024-0%d-%02d', '2024-0%d-%02d 10:00:00', %d.25, %d.5, '%c%d', %v, '%c%d')",
				k, 100*i+j, i+1, j+1, i+1, j+1, 10*i+j, k, 'a'+rune(i), j, j%2 == 0, 'a'+rune(i), j))
		}
		mustExec(t, c, "INSERT INTO t VALUES "+strings.Join(vals, ", "))
	}
	cases := []struct {
		where string
		files int64 // files read, of 4
		count int64
	}{
		{"v BETWEEN 200 AND 205", 1, 6},
		{"v > 305", 1, 4},
		{"305 < v", 1, 4},
		{"v >= 100 AND v < 200", 1, 10},
		{"v IN (1, 301)", 2, 2},
		{"v = 150", 0, 0},
		{"d >= '2024-04-01'", 1, 10},
		{"d = '2024-02-03'", 1, 1},
		{"ts < '2024-01-05 11:00:00'", 1, 5},
		{"price BETWEEN 20 AND 21", 1, 1},
		{"v > 200.5", 4, 19}, // a DECIMAL literal against an integer column: not pruned
		{"f = 1.5", 1, 1},
		{"f > 35.6", 1, 4},
		{"d < '2024-02-01 12:00'", 2, 11}, // a DATE against a datetime: the 1st of February counts
		{"s = 1", 4, 0},                   // a number against a string column: compared as numbers
		{"s = 'b3'", 1, 1},                // the default collation, utf8mb4_0900_bin, compares bytes
		{"s = 'B3'", 0, 0},
		{"v > 300 OR id = 1", 4, 10}, // a disjunction across columns: no pruning
		{"b = 1", 4, 20},
		{"v + 0 > 300", 4, 9},
	}
	for _, tc := range cases {
		before := n.metric(t, "lakehoused_scan_files_read_total")
		var got int64
		if err := c.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM t WHERE "+tc.where).Scan(&got); err != nil {
			t.Fatalf("%s: %v", tc.where, err)
		}
		read := n.metric(t, "lakehoused_scan_files_read_total") - before
		if got != tc.count || read != tc.files {
			t.Errorf("WHERE %s: count %d reading %d files, want %d reading %d", tc.where, got, read, tc.count, tc.files)
		}
	}
	// A correlated subquery's condition on the outer table is not a condition on its own scan
	// of the same table.
	var corr int64
	if err := c.QueryRowContext(context.Background(), "SELECT SUM((SELECT COUNT(*) FROM t t2 WHERE t2.b = t1.b AND t1.v > 300)) FROM t t1").Scan(&corr); err != nil || corr != 180 {
		t.Fatalf("correlated subquery: %d (%v), want 180", corr, err)
	}
	// Doubles with no exact binary form match their decimal literals.
	mustExec(t, c, "CREATE TABLE g (id INT PRIMARY KEY, g DOUBLE) COMMENT 'delta.autoOptimize.autoCompact=false'")
	mustExec(t, c, "INSERT INTO g VALUES (1, 1.1), (2, 0.1)")
	mustExec(t, c, "INSERT INTO g VALUES (3, 0.3), (4, 2.2)")
	for q, want := range map[string]int64{"g = 1.1": 1, "g <= 0.1": 1, "g >= 0.3": 3, "g BETWEEN 0.1 AND 0.3": 2, "g IN (2.2, 0.1)": 2} {
		var got int64
		if err := c.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM g WHERE "+q).Scan(&got); err != nil || got != want {
			t.Errorf("WHERE %s: %d (%v), want %d", q, got, err, want)
		}
	}
	// Inside a transaction, rows it inserted are seen whatever the statistics say.
	mustExec(t, c, "BEGIN")
	mustExec(t, c, "INSERT INTO t VALUES (99, 5000, '2030-01-01', '2030-01-01 00:00:00', 1, 1, 'z', 0, 'z')")
	var got int64
	if err := c.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM t WHERE v > 4000").Scan(&got); err != nil || got != 1 {
		t.Fatalf("own insert under a pruned scan: %d (%v)", got, err)
	}
	mustExec(t, c, "ROLLBACK")
}
