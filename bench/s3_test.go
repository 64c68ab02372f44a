package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/internal/s3test"
	"github.com/lakehoused/lakehoused/server"
	"github.com/lakehoused/lakehoused/storage"
)

// BenchmarkS3Warehouse runs the same queries on a local and an S3 warehouse (a versitygw
// gateway on this machine, so the network is loopback: the figures show the request
// overhead and what the read cache saves, not a WAN's latency). "Cold" is the first run
// after a node starts (empty read cache; the OS page cache is warm for both), "warm" the
// median of the next three.
func BenchmarkS3Warehouse(b *testing.B) {
	onlyPart(b, "s3")
	rows := envInt("LAKEHOUSED_BENCH_S3_ROWS", 2_000_000)
	dir := benchDir(b)
	csv := filepath.Join(dir, "s3.csv")
	if _, err := writeCSV(csv, rows); err != nil {
		b.Fatal(err)
	}
	g := s3test.Start(b)
	s3cfg := storage.S3Config{Endpoint: g.Endpoint, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Region: "us-east-1"}
	queries := []struct{ name, q string }{
		{"full_scan", "SELECT SUM(price), COUNT(*) FROM t"},
		{"range_1pct", fmt.Sprintf("SELECT COUNT(*), SUM(price) FROM t WHERE id BETWEEN %d AND %d", rows/2, rows/2+rows/100-1)},
		{"point", fmt.Sprintf("SELECT price FROM t WHERE id = %d", rows/3)},
	}
	for i := 0; i < b.N; i++ {
		figures = nil
		for _, wh := range []struct{ name, url string }{{"local", ""}, {"s3", "s3://" + g.Bucket + "/wh"}} {
			var diskCache int64
			start := func() (*server.Server, *sql.DB) {
				srv, err := server.Start(context.Background(), server.Config{
					DataDir: filepath.Join(dir, wh.name), Warehouse: wh.url, S3: s3cfg, S3DiskCacheBytes: diskCache,
					MySQLAddr: "127.0.0.1:0", HTTPAddr: "off", ShutdownGrace: time.Second, Version: "bench",
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				})
				if err != nil {
					b.Fatalf("start %s node: %v", wh.name, err)
				}
				n := &node{srv: srv, dataDir: filepath.Join(dir, wh.name)}
				return srv, n.open(b, "", 2)
			}
			srv, db := start()
			mustExec(b, db, "CREATE DATABASE "+dbName)
			mustExec(b, db, "CREATE TABLE "+dbName+".t ("+createCols+", PRIMARY KEY (id)) COMMENT 'delta.targetFileSize=8388608'")
			db.Close()
			n := &node{srv: srv, dataDir: filepath.Join(dir, wh.name)}
			ldb := n.open(b, dbName, 2)
			progress("LOAD DATA of %d rows into a %s warehouse …", rows, wh.name)
			load := loadData(b, ldb, csv, "t")
			ldb.Close()
			srv.Shutdown()
			figure("s3_load_%s: LOAD DATA of %d rows into a %s warehouse in %s = %s rows/s", wh.name, rows, wh.name, load.Round(time.Millisecond), rate(rows, load))

			// A fresh node: nothing cached.
			s3Queries(b, start, queries, wh.name, wh.name)
			if wh.name == "s3" {
				// With the disk tier: one node fills it, the next starts with an empty
				// memory cache and a warm disk.
				diskCache = 1 << 30
				s3Queries(b, start, queries, "s3", "")
				s3Queries(b, start, queries, "s3", "s3_disk")
			}
		}
	}
	fmt.Println("\n==== lakehoused S3 figures ====")
	for _, f := range figures {
		fmt.Println(f)
	}
}

// s3Queries starts a node and runs each query four times; label "" runs them without
// reporting (to fill a cache).
func s3Queries(b *testing.B, start func() (*server.Server, *sql.DB), queries []struct{ name, q string }, wh, label string) {
	srv, db := start()
	db.Close()
	defer srv.Shutdown()
	qdb := (&node{srv: srv}).open(b, dbName, 2)
	defer qdb.Close()
	for _, q := range queries {
		var lat []time.Duration
		for r := 0; r < 4; r++ {
			s := time.Now()
			rs, err := qdb.Query(q.q)
			if err != nil {
				b.Fatalf("%s on %s: %v", q.name, wh, err)
			}
			for rs.Next() {
			}
			rs.Close()
			lat = append(lat, time.Since(s))
		}
		warm := slices.Clone(lat[1:])
		slices.Sort(warm)
		switch label {
		case "":
		case "s3_disk":
			figure("s3_query_%s_s3_disk: %s on a s3 warehouse, memory cache empty, disk cache (--s3-disk-cache-mb) filled by an earlier node: first %s, warm %s (median of 3)", q.name, q.q, ms(lat[0]), ms(warm[1]))
		default:
			figure("s3_query_%s_%s: %s on a %s warehouse: cold %s, warm %s (median of 3)", q.name, wh, q.q, wh, ms(lat[0]), ms(warm[1]))
		}
	}
}
