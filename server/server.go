// Package server runs one lakehoused node: it opens the warehouse, starts the MySQL
// listener and the HTTP endpoint, and shuts both down gracefully.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lakehoused/lakehoused/catalog"
	"github.com/lakehoused/lakehoused/compaction"
	"github.com/lakehoused/lakehoused/connector"
	lakesql "github.com/lakehoused/lakehoused/sql"
	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// Config is a node's configuration. Zero values take the defaults noted.
type Config struct {
	// DataDir holds the node's own state and, unless Warehouse is set, the tables.
	// Default "./data".
	DataDir string
	// Warehouse is the URL tables live under (file:///… or s3://bucket/prefix). Default:
	// DataDir.
	Warehouse string
	// S3 reaches s3:// warehouses and attached tables; zero values take the AWS_* variables.
	S3 storage.S3Config
	// S3CacheBytes is the read cache in front of each S3 store. Default 256 MiB; negative
	// disables it.
	S3CacheBytes int64
	// ImportDirs are the directories file:// URLs in read_csv, read_parquet, lake_export and
	// friends may name. Default <DataDir>/import, created at start.
	ImportDirs []string
	// AllowPrivateHTTP lets http(s):// sources reach loopback and private addresses.
	AllowPrivateHTTP bool
	// S3DiskCacheBytes is the disk tier of the S3 read cache, in <DataDir>/s3cache; 0 (the
	// default) disables it.
	S3DiskCacheBytes int64
	// CopySpillRows: an autocommit copy into a keyless table writes its staged rows out as
	// data files every this many rows. Default 2Mi; tests make it small.
	CopySpillRows int
	// NodeID names this node in its cluster; it must not change across restarts. Default
	// "node1".
	NodeID string
	// RaftAddr is where the node's Raft coordinator listens, for Raft and for the other
	// nodes' requests; every table commit is ratified by the coordinator (a single node is
	// a cluster of one). Default "127.0.0.1:0" (a free port; the command line's default is
	// 127.0.0.1:7307). "off" commits straight to storage: only for measuring what the
	// coordinator costs, never with other nodes.
	RaftAddr string
	// RaftAdvertise is where other nodes reach this one (a proxy, a NAT); default
	// RaftAddr as bound.
	RaftAdvertise string
	// Join lists Raft addresses of nodes to join on first start. With BootstrapExpect N,
	// nodes that find no cluster there bootstrap one together once N have met. Every node
	// must share the warehouse. JoinTimeout bounds the joining (default 60s).
	Join            []string
	BootstrapExpect int
	JoinTimeout     time.Duration
	// RaftTimeout is Raft's heartbeat and election timeout. Default 500ms; tests shorten it.
	RaftTimeout time.Duration
	// MySQLAddr is the MySQL protocol listen address. Default "127.0.0.1:3307".
	MySQLAddr string
	// HTTPAddr serves /healthz. Default "127.0.0.1:8307"; "off" disables it.
	HTTPAddr string
	// ShutdownGrace is how long shutdown lets running statements finish before closing
	// their connections; idle connections close at once. Default 10s.
	ShutdownGrace time.Duration
	Version       string
	Logger        *slog.Logger
	// WrapStore, if set, wraps the warehouse store. Tests use it to inject storage faults
	// (a full disk, a failing PUT) the way failpoints do.
	WrapStore func(storage.Store) storage.Store
}

func (c *Config) defaults() {
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if len(c.ImportDirs) == 0 {
		c.ImportDirs = []string{filepath.Join(c.DataDir, "import")}
	}
	if c.MySQLAddr == "" {
		c.MySQLAddr = "127.0.0.1:3307"
	}
	if c.NodeID == "" {
		c.NodeID = "node1"
	}
	if c.RaftTimeout == 0 {
		c.RaftTimeout = 500 * time.Millisecond
	}
	if c.RaftAddr == "" {
		c.RaftAddr = "127.0.0.1:0"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8307"
	}
	if c.S3CacheBytes == 0 {
		c.S3CacheBytes = 256 << 20
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is a running node.
type Server struct {
	cfg       Config
	engine    *lakesql.Engine
	committer *txlog.StorageCommitter
	auto      *compaction.Auto
	node      *raftNode
	warehouse storage.Store
	mysql     *lakesql.Listener
	http      *http.Server
	httpLn    net.Listener
	done      chan error
}

// Start opens the warehouse and starts listening. It returns once both listeners accept.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg.defaults()
	log := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("server: data dir %s: %w", cfg.DataDir, err)
	}
	wh := cfg.Warehouse
	if wh == "" {
		abs, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		wh = "file://" + abs
	}
	opener := storage.Opener{S3: cfg.S3, S3CacheBytes: max(cfg.S3CacheBytes, 0)}
	if cfg.S3DiskCacheBytes > 0 {
		disk, err := storage.OpenDiskCache(filepath.Join(cfg.DataDir, "s3cache"), cfg.S3DiskCacheBytes)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		opener.S3Disk = disk
	}
	resolver, err := newResolver(cfg, wh)
	if err != nil {
		return nil, err
	}
	store, err := opener.Open(wh)
	if err != nil {
		return nil, fmt.Errorf("server: open warehouse %s: %w", wh, err)
	}
	if cfg.WrapStore != nil {
		store = cfg.WrapStore(store)
	}
	var node *raftNode
	var catOpts []catalog.Option
	if cfg.RaftAddr != "off" {
		node, err = startNode(ctx, cfg, store, opener)
		if err != nil {
			return nil, err
		}
		catOpts = append(catOpts, catalog.WrapTableStores(node.wrap), catalog.OnDropped(node.dropped), catalog.OnChange(node.CatalogChanged))
	} else if len(cfg.Join) > 0 {
		return nil, errors.New("server: --join needs the Raft coordinator; give --raft-addr an address")
	}
	cat, err := catalog.Open(ctx, store, opener.Open, catOpts...)
	if err != nil {
		node.Shutdown()
		return nil, fmt.Errorf("server: open catalog: %w", err)
	}
	if node != nil {
		node.catalog.Store(cat)
	}
	txlog.Version = cfg.Version
	committer := txlog.NewStorageCommitter()
	committer.Logger = log
	// Every commit goes through auto-compaction, which watches for tables collecting small
	// files and compacts them in the background.
	jobs := &compaction.Jobs{}
	auto := compaction.NewAuto(committer, jobs, log)
	auto.Name = func(l *txlog.Log) string { return tableName(cat, l) }
	if node != nil {
		// Only the leader compacts, told of every node's commits as it publishes them.
		auto.Lead = node.IsLeader
		notify := func(url string) {
			if l := tableLog(cat, url); l != nil {
				auto.Notify(l)
			}
		}
		node.published.Store(&notify)
	}
	var clu lakesql.Cluster
	if node != nil {
		clu = sqlCluster{node}
	}
	engine, err := lakesql.NewEngine(lakesql.Config{Catalog: cat, Committer: auto, OpenURL: opener.Open, Logger: log,
		Resolver: resolver, DataDir: cfg.DataDir, CopySpillRows: cfg.CopySpillRows, Version: cfg.Version, Jobs: jobs, Cluster: clu, Warehouse: store})
	if err != nil {
		node.Shutdown()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.MySQLAddr)
	if err != nil {
		_ = engine.Close()
		node.Shutdown()
		return nil, fmt.Errorf("server: MySQL listener on %s: %w (is another lakehoused running? use --mysql-addr)", cfg.MySQLAddr, err)
	}
	my, err := engine.Listen(ln)
	if err != nil {
		ln.Close()
		_ = engine.Close()
		node.Shutdown()
		return nil, fmt.Errorf("server: MySQL listener: %w", err)
	}
	s := &Server{cfg: cfg, engine: engine, committer: committer, auto: auto, mysql: my, warehouse: store, node: node, done: make(chan error, 2)}
	if cfg.HTTPAddr != "off" {
		hl, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			my.Shutdown(0)
			_ = engine.Close()
			node.Shutdown()
			return nil, fmt.Errorf("server: HTTP listener on %s: %w (use --http-addr)", cfg.HTTPAddr, err)
		}
		s.httpLn = hl
		s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := s.http.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.done <- fmt.Errorf("server: HTTP: %w", err)
			}
		}()
	}
	go func() {
		if err := my.Serve(); err != nil {
			s.done <- fmt.Errorf("server: MySQL: %w", err)
		}
	}()
	log.Info("lakehoused started", "mysql", my.Addr().String(), "http", s.HTTPAddr(), "warehouse", wh, "version", cfg.Version)
	return s, nil
}

// newResolver makes the import directories absolute (creating the default one) so that
// file:// URLs are checked against real paths.
func newResolver(cfg Config, warehouse string) (*connector.Resolver, error) {
	r := &connector.Resolver{S3: cfg.S3, AllowPrivateHTTP: cfg.AllowPrivateHTTP}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if filepath.IsAbs(warehouse) {
		warehouse = "file://" + filepath.ToSlash(warehouse)
	}
	// The node's own state and the tables are off limits to file and S3 URLs.
	r.Deny = []string{"file://" + filepath.ToSlash(dataDir), strings.TrimSuffix(warehouse, "/")}
	for i, d := range cfg.ImportDirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("server: import dir %s: %w", d, err)
		}
		if i == 0 && len(cfg.ImportDirs) == 1 {
			if err := os.MkdirAll(abs, 0o755); err != nil {
				return nil, fmt.Errorf("server: import dir %s: %w", abs, err)
			}
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("server: import dir %s is not a directory", abs)
		}
		r.ImportDirs = append(r.ImportDirs, abs)
	}
	return r, nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"status\":\"ok\",\"version\":%q}\n", s.cfg.Version)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		m := s.engine.Metrics()
		if c, ok := s.warehouse.(*storage.Cached); ok {
			hits, misses, bytes := c.Stats()
			m["lakehoused_s3_cache_hits_total"], m["lakehoused_s3_cache_misses_total"] = hits, misses
			m["lakehoused_s3_cache_bytes"] = bytes
			if d := c.Disk(); d != nil {
				hits, misses, bytes := d.Stats()
				m["lakehoused_s3_disk_cache_hits_total"], m["lakehoused_s3_disk_cache_misses_total"] = hits, misses
				m["lakehoused_s3_disk_cache_bytes"] = bytes
			}
		}
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(w, "# TYPE %s counter\n%s %d\n", k, k, m[k])
		}
	})
	s.clusterRoutes(mux)
	ml := &mlflowAPI{s: s}
	ml.routes(mux)
	(&scoreboard{m: ml}).routes(mux)
	mux.HandleFunc("GET /api/jobs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"jobs": s.engine.Jobs().List()})
	})
	// Browsers may not change anything from another site's page (CSRF): state-changing
	// requests whose Sec-Fetch-Site or Origin says they come from elsewhere are refused.
	// MLflow's clients and curl send neither and pass.
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeMLflowError(w, &mlflowError{http.StatusForbidden, "PERMISSION_DENIED", "cross-origin request refused: a browser page of another site may not change this server"})
	}))
	return csrf.Handler(mux)
}

// tableLog finds the log of the table stored at url.
func tableLog(cat *catalog.Catalog, url string) *txlog.Log {
	if t := findTable(cat, func(t *catalog.Table) bool { return t.Store.URL() == url }); t != nil {
		return t.Log
	}
	return nil
}

// tableName finds the catalog name of the table whose log is l, for job reports.
func tableName(cat *catalog.Catalog, l *txlog.Log) string {
	if t := findTable(cat, func(t *catalog.Table) bool { return t.Log == l }); t != nil {
		return t.Entry.Database + "." + t.Entry.Name
	}
	return ""
}

func findTable(cat *catalog.Catalog, match func(*catalog.Table) bool) *catalog.Table {
	for _, db := range cat.Databases() {
		tables, err := cat.Tables(db)
		if err != nil {
			continue
		}
		for _, t := range tables {
			if match(t) {
				return t
			}
		}
	}
	return nil
}

// MySQLAddr is where the MySQL listener accepts.
func (s *Server) MySQLAddr() string { return s.mysql.Addr().String() }

// HTTPAddr is where the HTTP endpoint accepts ("" when disabled).
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Wait blocks until a listener fails or ctx is done.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.done:
		return err
	}
}

// Shutdown stops accepting, lets clients finish (up to ShutdownGrace), closes the rest and
// stops the engine. Every commit acknowledged before was durable when it was acknowledged.
func (s *Server) Shutdown() {
	s.cfg.Logger.Info("lakehoused shutting down")
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.http.Shutdown(ctx)
		cancel()
	}
	s.mysql.Shutdown(s.cfg.ShutdownGrace)
	// A checkpoint cut short is harmless (readers validate and fall back), but letting one
	// finish saves the next start a longer log replay.
	s.auto.Close() // a compaction cut short deletes the files it wrote
	s.committer.Wait()
	_ = s.engine.Close()
	s.node.Shutdown()
	s.cfg.Logger.Info("lakehoused stopped")
}
