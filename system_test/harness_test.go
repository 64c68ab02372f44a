// Package system_test starts real lakehoused nodes on loopback ports and talks to them over
// the MySQL protocol with go-sql-driver, as a client would.
package system_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/lakehoused/lakehoused/internal/s3test"
	"github.com/lakehoused/lakehoused/internal/testdata"
	"github.com/lakehoused/lakehoused/server"
	"github.com/lakehoused/lakehoused/storage"
)

// node is an in-process daemon for one test.
type node struct {
	t   *testing.T
	srv *server.Server
	dir string
	wh  string // the warehouse URL when not the data dir
}

func startNode(t *testing.T, dir string) *node {
	t.Helper()
	return startNodeWith(t, dir, nil)
}

// startS3Node starts a node whose warehouse is a bucket of its own versitygw gateway.
func startS3Node(t *testing.T) *node {
	t.Helper()
	g := s3test.Start(t)
	return startNodeWith(t, "", func(c *server.Config) {
		c.Warehouse = "s3://" + g.Bucket + "/wh"
		c.S3 = storage.S3Config{Endpoint: g.Endpoint, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Region: "us-east-1"}
	})
}

// warehouse is the URL the node's tables live under.
func (n *node) warehouse() string {
	if n.wh != "" {
		return n.wh
	}
	return "file://" + n.dir
}

func startNodeWith(t *testing.T, dir string, configure func(*server.Config)) *node {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	cfg := server.Config{
		DataDir: dir, MySQLAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ShutdownGrace: time.Second, Version: "test", Logger: log,
		RaftTimeout: 100 * time.Millisecond, // a cluster of one elects itself sooner
	}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	n := &node{t: t, srv: srv, dir: dir, wh: cfg.Warehouse}
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv = nil
	}
}

// dsn builds a go-sql-driver DSN for the node. interpolateParams keeps `?` out of AS OF.
func (n *node) dsn(db string) string {
	c := mysql.NewConfig()
	c.User = "root"
	c.Net = "tcp"
	c.Addr = n.srv.MySQLAddr()
	c.DBName = db
	c.AllowNativePasswords = true
	c.ParseTime = true
	c.AllowAllFiles = true
	c.MultiStatements = false
	return c.FormatDSN()
}

func (n *node) db(name string) *sql.DB {
	n.t.Helper()
	db, err := sql.Open("mysql", n.dsn(name))
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { db.Close() })
	return db
}

// conn returns one dedicated connection, so session state (USE, transactions) sticks.
func (n *node) conn(db string) *sql.Conn {
	n.t.Helper()
	c, err := n.db(db).Conn(context.Background())
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { c.Close() })
	return c
}

func testdataDir(t *testing.T) string { return testdata.Dir(t) }

func mustExec(t *testing.T, c interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, q string, args ...any) {
	t.Helper()
	if _, err := c.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func errCode(err error) uint16 {
	if me, ok := err.(*mysql.MySQLError); ok {
		return me.Number
	}
	return 0
}

func fmtVal(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(x)
	case time.Time:
		if x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 && x.Nanosecond() == 0 {
			return x.Format("2006-01-02")
		}
		if x.Nanosecond() != 0 {
			return x.Format("2006-01-02 15:04:05.999999")
		}
		return x.Format("2006-01-02 15:04:05")
	}
	return fmt.Sprint(v)
}

type sqlRows = sql.Rows

// scanResult reads all rows (closing them) as driver values.
func scanResult(rows *sql.Rows) (*result, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	res := &result{cols: cols}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		res.rows = append(res.rows, vals)
	}
	return res, rows.Err()
}
