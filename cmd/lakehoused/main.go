// Command lakehoused is the lakehouse daemon: Delta Lake tables in a folder, served over the
// MySQL protocol.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lakehoused/lakehoused/server"
	"github.com/lakehoused/lakehoused/storage"
)

// version is set at build time: -ldflags "-X main.version=…".
var version = "dev"

const usage = `lakehoused — Delta Lake tables in a folder, served over the MySQL protocol.

Usage:
  lakehoused [serve] [flags]   start the daemon (the default command)
  lakehoused version           print the version
  lakehoused help              show this help

Flags of serve (each can also be set by the environment variable shown):
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "lakehoused", version)
		return 0
	case "help":
		fs, _ := serveFlags(stderr)
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
	case "serve":
		return serve(args, stderr)
	}
	fmt.Fprintf(stderr, "lakehoused: unknown command %q; run 'lakehoused help'\n", cmd)
	return 2
}

type serveOptions struct {
	dataDir, warehouse, mysqlAddr, httpAddr, logLevel string
	nodeID, raftAddr, raftAdvertise, join             string
	bootstrapExpect                                   int
	raftTimeout, joinTimeout                          time.Duration
	s3Endpoint, s3Region                              string
	s3VirtualHost, allowPrivateHTTP                   bool
	importDirs                                        stringList
	s3CacheMB, s3DiskCacheMB                          int64
	grace                                             time.Duration
}

func serveFlags(stderr io.Writer) (*flag.FlagSet, *serveOptions) {
	o := &serveOptions{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	str := func(p *string, name, env, def, help string) {
		if v := os.Getenv(env); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, help+" ($"+env+")")
	}
	str(&o.dataDir, "data-dir", "LAKEHOUSED_DATA_DIR", "./data",
		"folder for the node's state and, unless --warehouse says otherwise, the tables: <data-dir>/<db>/<table>/_delta_log/…")
	str(&o.warehouse, "warehouse", "LAKEHOUSED_WAREHOUSE", "",
		"URL the tables live under (file:///abs/path or s3://bucket/prefix); default: the data dir")
	str(&o.s3Endpoint, "s3-endpoint", "AWS_ENDPOINT_URL", "",
		"S3 service URL for s3:// warehouses and tables (http://host:port for a self-hosted gateway; default AWS); credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	str(&o.s3Region, "s3-region", "AWS_REGION", "", "S3 region")
	fs.BoolVar(&o.s3VirtualHost, "s3-virtual-host", false, "address S3 buckets as bucket.host (AWS style) instead of host/bucket")
	fs.Int64Var(&o.s3CacheMB, "s3-cache-mb", 256, "memory read cache for S3 data files, commits and checkpoints, in MiB (0 disables it)")
	fs.Int64Var(&o.s3DiskCacheMB, "s3-disk-cache-mb", 0, "disk tier of the S3 read cache in <data-dir>/s3cache, in MiB (0 disables it); it survives restarts")
	fs.Var(&o.importDirs, "import-dir", "directory that file:// URLs of read_csv, read_parquet, lake_export… may name; repeat for several (default <data-dir>/import)")
	fs.BoolVar(&o.allowPrivateHTTP, "allow-private-http", false, "let http(s):// sources reach loopback, private and link-local addresses")
	str(&o.mysqlAddr, "mysql-addr", "LAKEHOUSED_MYSQL_ADDR", "127.0.0.1:3307",
		"host:port of the MySQL protocol listener")
	str(&o.httpAddr, "http-addr", "LAKEHOUSED_HTTP_ADDR", "127.0.0.1:8307",
		"host:port of the HTTP endpoint (/healthz); 'off' disables it")
	str(&o.nodeID, "node-id", "LAKEHOUSED_NODE_ID", "node1", "this node's name in its cluster; keep it across restarts")
	str(&o.raftAddr, "raft-addr", "LAKEHOUSED_RAFT_ADDR", "127.0.0.1:7307",
		"host:port of the Raft coordinator that ratifies every commit (a single node is a cluster of one); other nodes reach this node there")
	str(&o.raftAdvertise, "raft-advertise", "LAKEHOUSED_RAFT_ADVERTISE", "", "host:port other nodes reach this node's --raft-addr at, when it differs (a proxy, NAT, or a 0.0.0.0 bind)")
	str(&o.join, "join", "LAKEHOUSED_JOIN", "", "comma-separated Raft addresses of cluster members to join on first start (every node must share --warehouse)")
	fs.IntVar(&o.bootstrapExpect, "bootstrap-expect", 0, "with --join: if no cluster answers, bootstrap one together once this many nodes (this one included) have met")
	fs.DurationVar(&o.joinTimeout, "join-timeout", time.Minute, "how long --join keeps trying before giving up")
	fs.DurationVar(&o.raftTimeout, "raft-timeout", 500*time.Millisecond, "Raft heartbeat and election timeout")
	str(&o.logLevel, "log-level", "LAKEHOUSED_LOG_LEVEL", "info", "debug, info, warn or error")
	fs.DurationVar(&o.grace, "shutdown-grace", 10*time.Second,
		"on SIGINT/SIGTERM, how long to wait for clients before closing their connections")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs, o
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// cacheBytes turns --s3-cache-mb into server.Config's S3CacheBytes (negative disables).
func cacheBytes(mb int64) int64 {
	if mb <= 0 {
		return -1
	}
	return mb << 20
}

func serve(args []string, stderr io.Writer) int {
	fs, o := serveFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "lakehoused: --log-level %q: use debug, info, warn or error\n", o.logLevel)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.Start(ctx, server.Config{
		DataDir: o.dataDir, Warehouse: o.warehouse, MySQLAddr: o.mysqlAddr, HTTPAddr: o.httpAddr,
		NodeID: o.nodeID, RaftAddr: o.raftAddr, RaftAdvertise: o.raftAdvertise, Join: splitList(o.join), BootstrapExpect: o.bootstrapExpect,
		JoinTimeout: o.joinTimeout, RaftTimeout: o.raftTimeout,
		S3:           storage.S3Config{Endpoint: o.s3Endpoint, Region: o.s3Region, VirtualHost: o.s3VirtualHost},
		S3CacheBytes: cacheBytes(o.s3CacheMB),
		ImportDirs:   o.importDirs, AllowPrivateHTTP: o.allowPrivateHTTP,
		ShutdownGrace: o.grace, Version: version, Logger: log,
	})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	err = srv.Wait(ctx)
	srv.Shutdown()
	if err != nil {
		log.Error("stopped on error", "err", err)
		return 1
	}
	return 0
}
