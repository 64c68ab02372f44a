package system_test

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestReadmeTour runs every statement of the README's SQL tour, as a user pasting it into
// the mysql client would, and fails on the first error.
func TestReadmeTour(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "```sql\n")
	if start < 0 {
		t.Fatal("README.md has no ```sql block")
	}
	text = text[start+len("```sql\n"):]
	text = text[:strings.Index(text, "```")]
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, "-- "); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		cur.WriteString(line + "\n")
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if len(stmts) < 10 {
		t.Fatalf("tour has only %d statements", len(stmts))
	}
	n := startNode(t, "")
	c := n.conn("")
	for _, q := range stmts {
		rows, err := c.QueryContext(context.Background(), q)
		if err != nil {
			t.Fatalf("README statement failed:\n%s\n%v", q, err)
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("README statement failed while reading rows:\n%s\n%v", q, err)
		}
		rows.Close()
	}
	// The tour ends by restoring version 1: the three rows as first inserted.
	res, err := readQuery(context.Background(), c, "SELECT id, amount FROM shop.orders ORDER BY id")
	if err != nil || len(res.rows) != 3 || fmtVal(res.rows[0][1]) != "12.50" || fmtVal(res.rows[1][1]) != "7.00" {
		t.Fatalf("after the tour (restored to version 1): %v %v", res, err)
	}
}
