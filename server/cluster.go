package server

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/lakehoused/lakehoused/cluster"
	"github.com/lakehoused/lakehoused/storage"
)

// raftNode is the server's member of its cluster (with Config.RaftAddr): alone, it is a
// cluster of one that bootstrapped itself. A nil *raftNode is no cluster.
type raftNode struct {
	*cluster.Node
	stores sync.Map // table URL → the table's own (unwrapped) store, for publishing
}

// startNode opens the Raft coordinator in <data-dir>/raft and waits until it leads (a
// cluster of one elects itself within two timeouts).
func startNode(ctx context.Context, cfg Config, opener storage.Opener) (*raftNode, error) {
	rn := &raftNode{}
	open := func(_ context.Context, url string) (storage.Store, error) {
		if s, ok := rn.stores.Load(url); ok {
			return s.(storage.Store), nil
		}
		return opener.Open(url)
	}
	n, err := cluster.Open(cluster.Config{
		ID: cfg.NodeID, Dir: filepath.Join(cfg.DataDir, "raft"), Addr: cfg.RaftAddr, Bootstrap: true,
		HeartbeatTimeout: cfg.RaftTimeout, ElectionTimeout: cfg.RaftTimeout,
		Publish: cluster.PublishTo(open), Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w (is another lakehoused using %s? use --raft-addr)", err, cfg.RaftAddr)
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
