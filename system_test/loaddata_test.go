package system_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// LOAD DATA, from the client (LOCAL) and from the server's file system, lands as one commit.
func TestLoadData(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	c := n.conn("")
	csv := filepath.Join(t.TempDir(), "orders.csv")
	var b strings.Builder
	b.WriteString("id,customer,amount,day\n")
	for i := 1; i <= 1000; i++ {
		fmt.Fprintf(&b, "%d,c%d,%d.25,2026-11-%02d\n", i, i%7, i, 1+i%28)
	}
	if err := os.WriteFile(csv, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE DATABASE d", "USE d",
		"CREATE TABLE orders (id BIGINT PRIMARY KEY, customer VARCHAR(10), amount DECIMAL(10,2), day DATE)",
		"CREATE TABLE plain (id BIGINT, customer VARCHAR(10), amount DECIMAL(10,2), day DATE)",
	} {
		mustExec(t, c, q)
	}
	mustExec(t, c, fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE orders FIELDS TERMINATED BY ',' IGNORE 1 LINES", csv))
	mustExec(t, c, fmt.Sprintf("LOAD DATA INFILE '%s' INTO TABLE plain FIELDS TERMINATED BY ',' IGNORE 1 LINES", csv))
	for _, table := range []string{"orders", "plain"} {
		res, err := readQuery(context.Background(), c, "SELECT COUNT(*), SUM(amount), MIN(day), MAX(customer) FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(fmtVal(res.rows[0][0]), " ", fmtVal(res.rows[0][1]), " ", fmtVal(res.rows[0][2]), " ", fmtVal(res.rows[0][3]))
		if want := "1000 500750 2026-11-01 c6"; got != want {
			t.Errorf("%s after LOAD DATA: %s, want %s", table, got, want)
		}
		res, _ = readQuery(context.Background(), c, fmt.Sprintf("SELECT COUNT(*) FROM lake_history('d.%s') WHERE operation = 'WRITE'", table))
		if fmtVal(res.rows[0][0]) != "1" {
			t.Errorf("%s: LOAD DATA should be one commit, history has %v WRITE commits", table, res.rows[0][0])
		}
	}
	// A duplicate key in the file fails the whole load with nothing committed.
	dup := filepath.Join(t.TempDir(), "dup.csv")
	_ = os.WriteFile(dup, []byte("5000,x,1,2026-01-01\n5000,y,2,2026-01-02\n"), 0o644)
	_, err := c.ExecContext(context.Background(), fmt.Sprintf("LOAD DATA INFILE '%s' INTO TABLE orders FIELDS TERMINATED BY ','", dup))
	if errCode(err) != 1062 {
		t.Errorf("duplicate key in LOAD DATA: want 1062, got %v", err)
	}
	res, _ := readQuery(context.Background(), c, "SELECT COUNT(*) FROM orders")
	if fmtVal(res.rows[0][0]) != "1000" {
		t.Errorf("failed load changed the table: %v rows", res.rows[0][0])
	}
}
