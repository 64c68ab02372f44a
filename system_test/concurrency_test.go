package system_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// A transaction whose UPDATE overlaps a concurrent commit gets error 1213 with SQLSTATE
// 40001, which clients know to retry; the retry then succeeds and nothing is lost.
func TestConflictingUpdateIsSerializationError(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	setup := n.conn("")
	for _, q := range []string{"CREATE DATABASE d", "CREATE TABLE d.acct (id INT PRIMARY KEY, bal INT)", "INSERT INTO d.acct VALUES (1, 100), (2, 100)"} {
		mustExec(t, setup, q)
	}
	a, b := n.conn("d"), n.conn("d")
	mustExec(t, a, "BEGIN")
	mustExec(t, a, "UPDATE acct SET bal = bal - 10 WHERE id = 1")
	mustExec(t, b, "UPDATE acct SET bal = bal + 5 WHERE id = 1") // autocommit: wins
	_, err := a.ExecContext(context.Background(), "COMMIT")
	me, ok := err.(*mysql.MySQLError)
	if !ok || me.Number != 1213 || string(me.SQLState[:]) != "40001" {
		t.Fatalf("COMMIT over a concurrent update: want 1213/40001, got %v", err)
	}
	// The retry sees the winner's change.
	mustExec(t, a, "UPDATE acct SET bal = bal - 10 WHERE id = 1")
	var bal int
	if err := a.QueryRowContext(context.Background(), "SELECT bal FROM acct WHERE id = 1").Scan(&bal); err != nil || bal != 95 {
		t.Fatalf("balance after retry = %d (%v), want 95", bal, err)
	}
}

// UPDATE and DELETE are WriteSerializable against inserts, as Delta's default: rows other
// clients insert meanwhile are ordered after the transaction instead of failing it, unless
// one of them has a key the transaction also writes.
func TestUpdateCommitsOverConcurrentInserts(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	setup := n.conn("")
	for _, q := range []string{"CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY, v INT)", "INSERT INTO d.t VALUES (5, 0), (6, 0)",
		"CREATE TABLE d.k (id INT, v INT)", "INSERT INTO d.k VALUES (1, 0)"} {
		mustExec(t, setup, q)
	}
	a, b := n.conn("d"), n.conn("d")
	mustExec(t, a, "BEGIN")
	mustExec(t, a, "UPDATE t SET v = 1 WHERE id = 6")
	mustExec(t, a, "DELETE FROM k WHERE id = 1")
	mustExec(t, b, "INSERT INTO t VALUES (7, 0)")
	mustExec(t, b, "INSERT INTO k VALUES (1, 9)") // keyless: a new row, not the deleted one
	mustExec(t, a, "COMMIT")
	var sum, cnt int
	if err := a.QueryRowContext(context.Background(), "SELECT SUM(v), COUNT(*) FROM t").Scan(&sum, &cnt); err != nil || sum != 1 || cnt != 3 {
		t.Fatalf("after the update over an insert: sum %d count %d (%v), want 1 and 3", sum, cnt, err)
	}
	if err := a.QueryRowContext(context.Background(), "SELECT SUM(v), COUNT(*) FROM k").Scan(&sum, &cnt); err != nil || sum != 9 || cnt != 1 {
		t.Fatalf("after the delete over an insert: sum %d count %d (%v), want 9 and 1", sum, cnt, err)
	}
	// Moving a row to a key someone inserted meanwhile is a conflict, not a duplicate.
	mustExec(t, a, "BEGIN")
	mustExec(t, a, "UPDATE t SET id = 100 WHERE id = 5")
	mustExec(t, b, "INSERT INTO t VALUES (100, 7)")
	_, err := a.ExecContext(context.Background(), "COMMIT")
	if me, ok := err.(*mysql.MySQLError); !ok || me.Number != 1213 {
		t.Fatalf("COMMIT of a key another client inserted: want 1213, got %v", err)
	}
	if err := a.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM t WHERE id IN (5, 100)").Scan(&cnt); err != nil || cnt != 2 {
		t.Fatalf("rows 5 and 100: %d (%v), want both", cnt, err)
	}
}

// Concurrent autocommit appends never conflict: every row arrives.
func TestConcurrentAppendsAllCommit(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	setup := n.conn("")
	mustExec(t, setup, "CREATE DATABASE d")
	mustExec(t, setup, "CREATE TABLE d.plain (id INT, c INT)")
	mustExec(t, setup, "CREATE TABLE d.keyed (id INT PRIMARY KEY, c INT)")
	const clients, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, clients*each*2)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			db := n.db("d")
			for i := 0; i < each; i++ {
				for _, table := range []string{"plain", "keyed"} {
					if _, err := db.Exec(fmt.Sprintf("INSERT INTO %s VALUES (%d, %d)", table, c*1000+i, c)); err != nil {
						errs <- fmt.Errorf("%s: %w", table, err)
					}
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent insert failed: %v", err)
	}
	for _, table := range []string{"plain", "keyed"} {
		var cnt, distinct int
		if err := setup.QueryRowContext(context.Background(), fmt.Sprintf("SELECT COUNT(*), COUNT(DISTINCT id) FROM d.%s", table)).Scan(&cnt, &distinct); err != nil {
			t.Fatal(err)
		}
		if cnt != clients*each || distinct != clients*each {
			t.Errorf("%s: %d rows, %d distinct ids, want %d", table, cnt, distinct, clients*each)
		}
	}
	// The same key from two clients at once: exactly one wins, the other gets 1062.
	var wins, dups int
	var mu sync.Mutex
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := n.db("d").Exec("INSERT INTO keyed VALUES (99999, 0)")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errCode(err) == 1062:
				dups++
			default:
				t.Errorf("racing duplicate insert: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || dups != clients-1 {
		t.Errorf("racing inserts of one key: %d won, %d got 1062; want 1 and %d", wins, dups, clients-1)
	}
}

// Many clients insert overlapping keys at once, so duplicates meet in the same batch, in a
// batch being prepared while another publishes, and across batches: every key ends up
// exactly once, with the value of the one statement that got OK, and every other
// statement for that key got 1062.
func TestRacingDuplicateKeys(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	setup := n.conn("")
	mustExec(t, setup, "CREATE DATABASE d")
	mustExec(t, setup, "CREATE TABLE d.k (id INT PRIMARY KEY, c INT)")
	const clients, keys = 6, 60
	var mu sync.Mutex
	winner := map[int]int{} // key → client that got OK
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			db := n.db("d")
			for i := 0; i < keys; i++ {
				k := (i*7 + c*13) % keys // every client tries every key, in different orders
				_, err := db.Exec(fmt.Sprintf("INSERT INTO k VALUES (%d, %d)", k, c))
				mu.Lock()
				switch {
				case err == nil:
					if prev, ok := winner[k]; ok {
						t.Errorf("key %d: clients %d and %d both got OK", k, prev, c)
					}
					winner[k] = c
				case errCode(err) != 1062:
					t.Errorf("key %d, client %d: %v", k, c, err)
				}
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	rows, err := setup.QueryContext(context.Background(), "SELECT id, c FROM d.k ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[int]int{}
	for rows.Next() {
		var id, c int
		if err := rows.Scan(&id, &c); err != nil {
			t.Fatal(err)
		}
		if _, dup := got[id]; dup {
			t.Errorf("key %d stored twice", id)
		}
		got[id] = c
	}
	if len(got) != keys || len(winner) != keys {
		t.Fatalf("%d keys stored, %d acknowledged, want %d", len(got), len(winner), keys)
	}
	for k, c := range winner {
		if got[k] != c {
			t.Errorf("key %d holds client %d's row, but client %d got the OK", k, got[k], c)
		}
	}
}

// An UPDATE that moves a row to a key another client inserted meanwhile conflicts even when
// a compaction has already merged that client's file into another one.
func TestUpdateKeyOverInsertAndCompaction(t *testing.T) {
	t.Parallel()
	n := startNode(t, "")
	setup := n.conn("")
	for _, q := range []string{"CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY, v INT)", "INSERT INTO d.t VALUES (5, 0)", "INSERT INTO d.t VALUES (6, 0)"} {
		mustExec(t, setup, q)
	}
	a, b := n.conn("d"), n.conn("d")
	mustExec(t, a, "BEGIN")
	mustExec(t, a, "UPDATE t SET id = 100 WHERE id = 5")
	mustExec(t, b, "INSERT INTO t VALUES (100, 7)")
	mustExec(t, b, "CALL lake_optimize('d.t')") // merges the file holding 100 with the others
	_, err := a.ExecContext(context.Background(), "COMMIT")
	if me, ok := err.(*mysql.MySQLError); !ok || me.Number != 1213 {
		t.Fatalf("COMMIT of a key inserted and then compacted meanwhile: want 1213, got %v", err)
	}
	var cnt int
	if err := a.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM t WHERE id = 100").Scan(&cnt); err != nil || cnt != 1 {
		t.Fatalf("rows with id 100: %d (%v), want 1", cnt, err)
	}
}
