package system_test

import (
	"context"
	"fmt"
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
		mustExec(t, c, "INSERT INTO t VALUES "+joinComma(vals))
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
		{"f > 35.6", 1, 4},
		{"v > 200.5", 2, 19},
		{"s = 'b3'", 1, 1}, // the default collation, utf8mb4_0900_bin, compares bytes
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
	// Inside a transaction, rows it inserted are seen whatever the statistics say.
	mustExec(t, c, "BEGIN")
	mustExec(t, c, "INSERT INTO t VALUES (99, 5000, '2030-01-01', '2030-01-01 00:00:00', 1, 1, 'z', 0, 'z')")
	var got int64
	if err := c.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM t WHERE v > 4000").Scan(&got); err != nil || got != 1 {
		t.Fatalf("own insert under a pruned scan: %d (%v)", got, err)
	}
	mustExec(t, c, "ROLLBACK")
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}
