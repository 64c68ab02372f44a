package connector

// Large results: bounded memory, speed, and closing a stream early.

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestQueryMillionRows streams 1M rows of (integer, string) from each server, checks the
// count and sums, that the heap stays small, and logs the speed.
func TestQueryMillionRows(t *testing.T) {
	const n = 1_000_000
	tests := []struct {
		name string
		open func() (Source, error)
	}{
		{"mysql", func() (Source, error) {
			return QueryMySQL(context.Background(), "mysql://root@"+testMySQLAddr+"/test",
				"SELECT CAST(seq AS SIGNED) AS n, CONCAT('row-', seq) AS s FROM seq_1_to_1000000", DBOptions{})
		}},
		{"postgres", func() (Source, error) {
			return QueryPostgres(context.Background(), "postgres://postgres@"+testPostgresAddr+"/test?sslmode=disable",
				"SELECT g::bigint AS n, 'row-' || g AS s FROM (SELECT generate_series(1, 1000000) AS g) x", DBOptions{})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runtime.GC()
			start := time.Now()
			src, err := tt.open()
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var rows, sum, strBytes int64
			var maxHeap uint64
			var ms runtime.MemStats
			for batch := 0; ; batch++ {
				rec, err := src.Next(context.Background())
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				ns := rec.Column(0).(*array.Int64)
				ss := rec.Column(1).(*array.String)
				for i := 0; i < ns.Len(); i++ {
					sum += ns.Value(i)
					strBytes += int64(len(ss.Value(i)))
				}
				rows += rec.NumRows()
				rec.Release()
				if batch%4 == 0 {
					runtime.ReadMemStats(&ms)
					maxHeap = max(maxHeap, ms.HeapInuse)
				}
			}
			took := time.Since(start)
			if rows != n || sum != n*(n+1)/2 {
				t.Errorf("got %d rows summing to %d, want %d and %d", rows, sum, n, n*(n+1)/2)
			}
			// "row-" is 4 bytes; 1..1M have 5,888,896 digits in all.
			if strBytes != 4*n+5_888_896 {
				t.Errorf("string bytes %d", strBytes)
			}
			if p := src.Progress(); p.Rows != n || p.Bytes < strBytes {
				t.Errorf("progress %+v, want %d rows and at least %d bytes", p, n, strBytes)
			}
			if maxHeap > 200<<20 {
				t.Errorf("heap in use reached %d MB; the result must stream", maxHeap>>20)
			}
			t.Logf("%s: %d rows in %v: %.0f rows/s, peak heap in use %d MB", tt.name, rows, took.Round(time.Millisecond), float64(rows)/took.Seconds(), maxHeap>>20)
		})
	}
}

// TestQueryEarlyClose reads one batch of a huge result, closes, and checks that Close is
// quick and that the server is no longer running the query.
func TestQueryEarlyClose(t *testing.T) {
	t.Parallel()
	appName := dbTestName(t)
	tests := []struct {
		name    string
		open    func() (Source, error)
		running func() (int, error) // how many sessions still run the query
	}{
		{"mysql", func() (Source, error) {
			return QueryMySQL(context.Background(), "mysql://root@"+testMySQLAddr+"/test",
				"SELECT seq, '"+appName+"' FROM seq_1_to_1000000000", DBOptions{})
		}, func() (int, error) {
			db, err := sql.Open("mysql", "root@tcp("+testMySQLAddr+")/")
			if err != nil {
				return 0, err
			}
			defer db.Close()
			var n int
			err = db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT seq, ''" + appName + "''%'").Scan(&n)
			return n, err
		}},
		{"postgres", func() (Source, error) {
			return QueryPostgres(context.Background(), "postgres://postgres@"+testPostgresAddr+"/test?sslmode=disable&application_name="+appName,
				"SELECT generate_series(1, 1000000000)", DBOptions{})
		}, func() (int, error) {
			conn, err := pgconn.Connect(context.Background(), "postgres://postgres@"+testPostgresAddr+"/test?sslmode=disable")
			if err != nil {
				return 0, err
			}
			defer conn.Close(context.Background())
			res := conn.ExecParams(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", [][]byte{[]byte(appName)}, nil, nil, nil).Read()
			if res.Err != nil {
				return 0, res.Err
			}
			var n int
			_, err = fmt.Sscan(string(res.Rows[0][0]), &n)
			return n, err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src, err := tt.open()
			if err != nil {
				t.Fatal(err)
			}
			rec, err := src.Next(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			rec.Release()
			if n, err := tt.running(); err != nil || n != 1 {
				t.Fatalf("before Close: %d sessions run the query (%v), want 1", n, err)
			}
			start := time.Now()
			if err := src.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Close took %v", took)
			}
			if err := src.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := src.Next(context.Background()); err == nil {
				t.Error("Next after Close: no error")
			}
			deadline := time.Now().Add(3 * time.Second)
			for {
				n, err := tt.running()
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("3 s after Close the server still runs the query in %d sessions", n)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// startFakePostgres listens on a loopback port and answers every connection the way
// PostgreSQL answers a wrong password: it asks for a cleartext password, then refuses it.
func startFakePostgres(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				be := pgproto3.NewBackend(conn, conn)
				msg, err := be.ReceiveStartupMessage()
				if err != nil {
					return
				}
				if _, ok := msg.(*pgproto3.SSLRequest); ok {
					conn.Write([]byte{'N'})
					if msg, err = be.ReceiveStartupMessage(); err != nil {
						return
					}
				}
				startup, ok := msg.(*pgproto3.StartupMessage)
				if !ok {
					return
				}
				be.Send(&pgproto3.AuthenticationCleartextPassword{})
				if be.Flush() != nil {
					return
				}
				be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
				if _, err := be.Receive(); err != nil {
					return
				}
				be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01",
					Message: fmt.Sprintf("password authentication failed for user %q", startup.Parameters["user"])})
				be.Flush()
			}()
		}
	}()
	return ln.Addr().String()
}

// startSilentServer accepts connections and never says anything, like a firewall that
// lets the handshake through, or an overloaded server.
func startSilentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, unread, until the test ends
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}
