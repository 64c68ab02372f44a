package system_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/server"
	"github.com/lakehoused/lakehoused/storage"
)

// slowFirstCommit delays the first commit file written after armed is set, so that
// transactions committing meanwhile must queue behind it.
type slowFirstCommit struct {
	storage.Store
	armed *atomic.Bool
}

func (s slowFirstCommit) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if strings.Contains(key, "_delta_log/") && strings.HasSuffix(key, ".json") && s.armed.CompareAndSwap(true, false) {
		time.Sleep(300 * time.Millisecond)
	}
	return s.Store.PutIfAbsent(ctx, key, data)
}

// Concurrent autocommit inserts into one table are coalesced into shared commits; every
// statement is still acknowledged only once durable, and a duplicate key in the same batch
// fails only its own statement.
func TestGroupCommitCoalescesConcurrentInserts(t *testing.T) {
	t.Parallel()
	var armed atomic.Bool
	dir := t.TempDir()
	srv, err := server.Start(context.Background(), server.Config{
		DataDir: dir, MySQLAddr: "127.0.0.1:0", HTTPAddr: "off", Version: "test",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		WrapStore: func(s storage.Store) storage.Store { return slowFirstCommit{s, &armed} },
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, srv: srv, dir: dir}
	t.Cleanup(n.stop)
	setup := n.conn("")
	mustExec(t, setup, "CREATE DATABASE d")
	mustExec(t, setup, "CREATE TABLE d.k (id INT PRIMARY KEY, c INT)")
	mustExec(t, setup, "CREATE TABLE d.p (id INT, c INT)")

	for _, table := range []string{"k", "p"} {
		const clients = 8
		dbs := make([]*sql.Conn, clients)
		for i := range dbs {
			dbs[i] = n.conn("d")
		}
		armed.Store(true)
		var wg sync.WaitGroup
		errs := make([]error, clients)
		start := make(chan struct{})
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				id := i
				if table == "k" && i == clients-1 {
					id = 0 // the same key as client 0: one of the two must fail
				}
				if i > 0 {
					time.Sleep(50 * time.Millisecond) // arrive while the first commit is slow
				}
				_, errs[i] = dbs[i].ExecContext(context.Background(), fmt.Sprintf("INSERT INTO %s VALUES (%d, %d)", table, id, i))
			}(i)
		}
		close(start)
		wg.Wait()
		failed := 0
		for i, err := range errs {
			if err != nil {
				if table == "k" && errCode(err) == 1062 {
					failed++
					continue
				}
				t.Errorf("%s client %d: %v", table, i, err)
			}
		}
		wantRows := clients
		if table == "k" {
			wantRows = clients - 1
			if failed != 1 {
				t.Errorf("duplicate key in one batch: %d statements failed with 1062, want 1", failed)
			}
		}
		var rows, commits, maxTx int
		if err := setup.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM d."+table).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		q := fmt.Sprintf("SELECT COUNT(*), MAX(CAST(JSON_UNQUOTE(JSON_EXTRACT(operation_metrics, '$.numTransactions')) AS SIGNED)) FROM lake_history('d.%s') WHERE operation = 'WRITE'", table)
		if err := dbs[0].QueryRowContext(context.Background(), q).Scan(&commits, &maxTx); err != nil {
			t.Fatal(err)
		}
		if rows != wantRows {
			t.Errorf("%s: %d rows, want %d", table, rows, wantRows)
		}
		if maxTx < 2 || commits >= wantRows {
			t.Errorf("%s: %d statements went into %d commits (largest held %d): no coalescing", table, wantRows, commits, maxTx)
		}
		t.Logf("%s: %d statements in %d commits, largest %d", table, wantRows, commits, maxTx)
	}
}
