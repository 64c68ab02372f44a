package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/lakehoused/lakehoused/catalog"
	"github.com/lakehoused/lakehoused/cluster"
	lakesql "github.com/lakehoused/lakehoused/sql"
	"github.com/lakehoused/lakehoused/storage"
)

// raftNode is the server's member of its cluster: alone, a cluster of one that
// bootstrapped itself; with Config.Join, one of several sharing the warehouse. A nil
// *raftNode is no cluster (RaftAddr "off").
type raftNode struct {
	*cluster.Node
	stores sync.Map // table URL → the table's own (unwrapped) store, for publishing
	// catalog is set once the catalog is open; catalog changes other nodes announce mark
	// it stale.
	catalog atomic.Pointer[catalog.Catalog]
	// published is told (on the leader) of each table a commit was published to, from
	// any node: auto-compaction runs there.
	published atomic.Pointer[func(url string)]
}

// clusterMarker is the warehouse's identity: every node of a cluster must read the same one,
// which proves that they share the warehouse (the same local path on two machines is two
// warehouses).
const clusterMarker = "_lakehouse/cluster.json"

// warehouseIdentity reads the warehouse's marker, creating it on first use.
func warehouseIdentity(ctx context.Context, wh storage.Store) (string, error) {
	b, _ := json.Marshal(map[string]string{"warehouse_id": uuid.NewString()})
	err := wh.PutIfAbsent(ctx, clusterMarker, b)
	if err != nil && !errors.Is(err, storage.ErrExist) {
		return "", fmt.Errorf("server: writing the warehouse marker %s: %w", clusterMarker, err)
	}
	b, err = wh.Get(ctx, clusterMarker)
	if err != nil {
		return "", fmt.Errorf("server: reading the warehouse marker %s: %w", clusterMarker, err)
	}
	var m struct {
		ID string `json:"warehouse_id"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.ID == "" {
		return "", fmt.Errorf("server: the warehouse marker %s is damaged (%v); it holds {\"warehouse_id\": \"…\"}", clusterMarker, err)
	}
	return m.ID, nil
}

// startNode opens the Raft coordinator in <data-dir>/raft: a first start joins the nodes in
// Config.Join (or bootstraps with them) or, without any, bootstraps a cluster of one; a
// restart recovers from its log. It returns once the cluster has a leader.
func startNode(ctx context.Context, cfg Config, warehouse storage.Store, opener storage.Opener) (*raftNode, error) {
	rn := &raftNode{}
	open := func(_ context.Context, url string) (storage.Store, error) {
		if s, ok := rn.stores.Load(url); ok {
			return s.(storage.Store), nil
		}
		return opener.Open(url)
	}
	identity, err := warehouseIdentity(ctx, warehouse)
	if err != nil {
		return nil, err
	}
	n, err := cluster.Open(cluster.Config{
		ID: cfg.NodeID, Dir: filepath.Join(cfg.DataDir, "raft"), Addr: cfg.RaftAddr, Advertise: cfg.RaftAdvertise,
		Bootstrap: len(cfg.Join) == 0, Join: cfg.Join, BootstrapExpect: cfg.BootstrapExpect, JoinTimeout: cfg.JoinTimeout,
		Identity:         identity,
		HeartbeatTimeout: cfg.RaftTimeout, ElectionTimeout: cfg.RaftTimeout,
		Publish: cluster.PublishTo(open), Logger: cfg.Logger,
		OnPublished: func(url string, _ int64) {
			if f := rn.published.Load(); f != nil {
				go (*f)(url)
			}
		},
		OnCatalogChange: func() {
			if c := rn.catalog.Load(); c != nil {
				c.MarkStale()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	rn.Node = n
	wait, cancel := context.WithTimeout(ctx, 10*time.Second+4*cfg.RaftTimeout)
	defer cancel()
	if err := n.WaitLeader(wait); err != nil {
		n.Shutdown()
		return nil, fmt.Errorf("server: %w", err)
	}
	return rn, nil
}

// wrap routes a table's commits through the cluster.
func (rn *raftNode) wrap(s storage.Store) storage.Store {
	rn.stores.Store(s.URL(), s)
	return rn.Wrap(s)
}

// Shutdown stops the node, if there is one.
func (rn *raftNode) Shutdown() {
	if rn != nil && rn.Node != nil {
		rn.Node.Shutdown()
	}
}

// dropped makes the cluster forget a dropped table, so its folder can be used again.
func (rn *raftNode) dropped(ctx context.Context, url string) error {
	rn.stores.Delete(url)
	return rn.Forget(ctx, url)
}

// IsLeader reports whether this node leads its cluster.
func (s *Server) IsLeader() bool { return s.node != nil && s.node.IsLeader() }

// clusterNode is one row of /api/cluster/nodes and lake_cluster_nodes().
type clusterNode struct {
	ID           string     `json:"id"`
	Address      string     `json:"address"`
	Role         string     `json:"role"` // voter, nonvoter
	Leader       bool       `json:"leader"`
	Reachable    bool       `json:"reachable"`
	State        string     `json:"state,omitempty"`
	LastContact  *time.Time `json:"last_contact,omitempty"`
	AppliedIndex *uint64    `json:"applied_index,omitempty"`
}

// nodes lists the cluster's members, each asked for its status.
func (rn *raftNode) nodes(ctx context.Context) ([]clusterNode, error) {
	members, err := rn.Members(ctx, time.Second)
	if err != nil {
		return nil, err
	}
	out := make([]clusterNode, len(members))
	for i, m := range members {
		cn := clusterNode{ID: m.ID, Address: m.Addr, Role: "nonvoter", Leader: m.Leader}
		if m.Voter {
			cn.Role = "voter"
		}
		if st := m.Status; st != nil {
			cn.Reachable, cn.State = true, st.State
			applied := st.Applied
			cn.AppliedIndex = &applied
			if !st.LastContact.IsZero() {
				lc := st.LastContact.UTC()
				cn.LastContact = &lc
			}
		}
		out[i] = cn
	}
	return out, nil
}

// clusterRoutes serves the cluster's state over HTTP.
func (s *Server) clusterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/cluster/nodes", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if s.node == nil {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "this node runs without the Raft coordinator (--raft-addr off)"})
			return
		}
		nodes, err := s.node.nodes(r.Context())
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"nodes": nodes})
	})
	// /readyz: 200 once the node can serve, that is it knows a leader and has applied what
	// it knows to be committed; 503 with the reason otherwise. /healthz only says the
	// process is up.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		status := map[string]any{"status": "ready"}
		if s.node != nil {
			st := s.node.Status()
			status["node"], status["leader"], status["applied_index"] = st.ID, st.Leader, st.Applied
			switch {
			case st.Leader == "":
				status["status"], status["reason"] = "not ready", "no leader is known: the cluster may have lost its quorum"
			case st.Applied < st.Commit:
				status["status"], status["reason"] = "not ready", fmt.Sprintf("catching up: applied %d of %d", st.Applied, st.Commit)
			}
		}
		if status["status"] != "ready" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(status)
	})
}

// sqlCluster is the node as the SQL surface sees it (lakesql.Cluster).
type sqlCluster struct{ rn *raftNode }

func (c sqlCluster) Join(ctx context.Context, id, addr string) error {
	return c.rn.Admit(ctx, id, addr)
}
func (c sqlCluster) Remove(ctx context.Context, id string) error { return c.rn.Node.Remove(ctx, id) }

func (c sqlCluster) Nodes(ctx context.Context) ([]lakesql.ClusterNode, error) {
	nodes, err := c.rn.nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]lakesql.ClusterNode, len(nodes))
	for i, n := range nodes {
		out[i] = lakesql.ClusterNode{ID: n.ID, Address: n.Address, Role: n.Role, Leader: n.Leader, LastContact: n.LastContact, AppliedIndex: n.AppliedIndex}
	}
	return out, nil
}

// Sync: see lakesql.ReadConsistencies.
func (c sqlCluster) Sync(ctx context.Context, level string) error {
	switch level {
	case "local":
		return nil
	case "linearizable":
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return c.rn.ReadIndex(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.rn.CatchUp(ctx)
}

// RaftAddr is where the node's coordinator listens ("" without one).
func (s *Server) RaftAddr() string {
	if s.node == nil {
		return ""
	}
	return s.node.Addr()
}

func (c sqlCluster) Atomic(ctx context.Context, tables int) (context.Context, func(error)) {
	return c.rn.Node.Atomic(ctx, tables)
}
