package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Membership: a new node joins through any member (the request goes on to the leader,
// which adds it as a voter); nodes started together with BootstrapExpect find each other
// and bootstrap as one cluster, as rqlite's do, so the same command line serves the first
// start, a restart and a scale-up. Every member must see the same warehouse: a node proves
// it by its Identity, the marker the server reads from the warehouse, and one whose marker
// differs is refused.

// NodeStatus is what a node says of itself.
type NodeStatus struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	State    string `json:"state"` // Leader, Follower, Candidate, Shutdown
	Leader   string `json:"leader"`
	Applied  uint64 `json:"applied"`
	Commit   uint64 `json:"commit"`
	Identity string `json:"identity"`
	// LastContact is when this node last heard from the leader (now, on the leader; zero
	// when never).
	LastContact time.Time `json:"last_contact"`
}

// Status reports this node's view.
func (n *Node) Status() NodeStatus {
	leader, _ := n.Leader()
	st := NodeStatus{ID: n.cfg.ID, Addr: n.Addr(), State: n.raft.State().String(), Leader: leader,
		Applied: n.raft.AppliedIndex(), Commit: n.raft.CommitIndex(), Identity: n.cfg.Identity, LastContact: n.raft.LastContact()}
	if n.IsLeader() {
		st.LastContact = time.Now()
	}
	return st
}

// Member is one node of the cluster's configuration, with its status when it answered.
type Member struct {
	ID     string
	Addr   string
	Voter  bool
	Leader bool
	// Status is nil when the node did not answer.
	Status *NodeStatus
}

// Members lists the cluster's configuration as this node knows it, asking every node for
// its status (within timeout).
func (n *Node) Members(ctx context.Context, timeout time.Duration) ([]Member, error) {
	fut := n.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return nil, fmt.Errorf("cluster: reading the configuration: %w", err)
	}
	leaderID, _ := n.Leader()
	servers := fut.Configuration().Servers
	out := make([]Member, len(servers))
	done := make(chan struct{}, len(servers))
	for i, s := range servers {
		out[i] = Member{ID: string(s.ID), Addr: string(s.Address), Voter: s.Suffrage == raft.Voter, Leader: string(s.ID) == leaderID}
		go func() {
			defer func() { done <- struct{}{} }()
			if out[i].ID == n.cfg.ID {
				st := n.Status()
				out[i].Status = &st
				return
			}
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if resp, err := n.peers.call(cctx, out[i].Addr, request{Op: "status"}); err == nil && resp.Status != nil {
				out[i].Status = resp.Status
			}
		}()
	}
	for range servers {
		<-done
	}
	return out, nil
}

// Admit adds the node id at addr as a voter, from any member (the leader does it). The node
// must be running and see the cluster's warehouse.
func (n *Node) Admit(ctx context.Context, id, addr string) error {
	if id == "" || addr == "" {
		return fmt.Errorf("%w: a node needs an id and a Raft address", ErrMembership)
	}
	return n.admit(ctx, request{Op: "join", ID: id, Addr: addr})
}

// admit handles a join: on a follower it goes to the leader; the leader checks the
// joiner's warehouse and that its id and address are free, then adds it.
func (n *Node) admit(ctx context.Context, req request) error {
	if !n.IsLeader() {
		_, addr := n.Leader()
		if addr == "" || addr == n.Addr() {
			return ErrNotLeader
		}
		resp, err := n.peers.call(ctx, addr, req)
		if err != nil {
			return err
		}
		return resp.err()
	}
	fut := n.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return err
	}
	for _, s := range fut.Configuration().Servers {
		switch {
		case string(s.ID) == req.ID && string(s.Address) == req.Addr:
			return nil // a member already (a restart, or a retried join)
		case string(s.ID) == req.ID:
			return fmt.Errorf("%w: node id %q is already in the cluster at %s; give the new node another --node-id, or remove the old one first with CALL lake_cluster_remove('%s')", ErrMembership, req.ID, s.Address, req.ID)
		case string(s.Address) == req.Addr:
			return fmt.Errorf("%w: address %s already belongs to node %q; remove it first with CALL lake_cluster_remove('%s')", ErrMembership, req.Addr, s.ID, s.ID)
		}
	}
	// The leader must reach the node where it says it is before it becomes a voter: a
	// voter nobody can reach takes the quorum with it.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	resp, err := n.peers.call(cctx, req.Addr, request{Op: "status"})
	cancel()
	if err != nil {
		return fmt.Errorf("%w: node %s at %s does not answer (start it with --node-id %s --raft-addr %s first, or fix its --raft-advertise): %v", ErrMembership, req.ID, req.Addr, req.ID, req.Addr, err)
	}
	if resp.Status == nil || resp.Status.ID != req.ID {
		got := ""
		if resp.Status != nil {
			got = resp.Status.ID
		}
		return fmt.Errorf("%w: the node at %s is %q, not %q", ErrMembership, req.Addr, got, req.ID)
	}
	if err := n.sameWarehouse(req.ID, resp.Status.Identity); err != nil {
		return err
	}
	n.log.Info("cluster: adding a voter", "id", req.ID, "addr", req.Addr)
	return n.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.Addr), 0, 10*time.Second).Error()
}

// sameWarehouse refuses a node whose warehouse marker is not this cluster's.
func (n *Node) sameWarehouse(id, identity string) error {
	if n.cfg.Identity == "" || identity == n.cfg.Identity {
		return nil
	}
	return fmt.Errorf("%w: node %q sees another warehouse than this cluster (its marker is %q, the cluster's %q); every node of a cluster must use the same warehouse: an S3 bucket or a path shared by all nodes",
		ErrWarehouse, id, identity, n.cfg.Identity)
}

// Remove takes node id out of the cluster, from any member.
func (n *Node) Remove(ctx context.Context, id string) error {
	if n.IsLeader() {
		return n.removeLocal(id)
	}
	_, addr := n.Leader()
	if addr == "" {
		return ErrNotLeader
	}
	resp, err := n.peers.call(ctx, addr, request{Op: "remove", ID: id})
	if err != nil {
		return err
	}
	return resp.err()
}

func (n *Node) removeLocal(id string) error {
	fut := n.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return err
	}
	var ids []string
	voters, found := 0, false
	for _, s := range fut.Configuration().Servers {
		ids = append(ids, string(s.ID))
		if s.Suffrage == raft.Voter {
			voters++
		}
		found = found || string(s.ID) == id
	}
	if !found {
		slices.Sort(ids)
		return fmt.Errorf("%w: there is no node %q; the nodes are: %s", ErrMembership, id, strings.Join(ids, ", "))
	}
	if voters <= 1 {
		return fmt.Errorf("%w: node %q is the last voter; a cluster cannot remove its last voter", ErrMembership, id)
	}
	n.log.Info("cluster: removing a node", "id", id)
	return n.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error()
}

// noticed records a node that announced itself while waiting for BootstrapExpect peers.
func (n *Node) noticed(req request) error {
	if err := n.sameWarehouse(req.ID, req.Identity); err != nil {
		return err
	}
	n.notifyMu.Lock()
	defer n.notifyMu.Unlock()
	if n.notified == nil {
		n.notified = map[string]string{}
	}
	n.notified[req.ID] = req.Addr
	return nil
}

// joinCluster makes a node without Raft state a member: it asks each address in
// Config.Join to let it in and, with BootstrapExpect, announces itself to them and
// bootstraps the cluster with them once that many nodes have met. It retries with backoff
// until Config.JoinTimeout.
func (n *Node) joinCluster(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.JoinTimeout)
	defer cancel()
	var peers []string
	for _, a := range n.cfg.Join {
		if a = strings.TrimSpace(a); a != "" && a != n.Addr() {
			peers = append(peers, a)
		}
	}
	me := request{ID: n.cfg.ID, Addr: n.Addr(), Identity: n.cfg.Identity}
	wait := 100 * time.Millisecond
	var last error
	for attempt := 1; ; attempt++ {
		for _, a := range peers {
			req := me
			req.Op = "join"
			actx, acancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err := n.peers.call(actx, a, req)
			acancel()
			if err == nil {
				err = resp.err()
			}
			if err == nil {
				n.log.Info("cluster: joined", "through", a)
				return nil
			}
			if errors.Is(err, ErrWarehouse) || errors.Is(err, ErrMembership) {
				return err
			}
			last = fmt.Errorf("joining through %s: %w", a, err)
		}
		if n.cfg.BootstrapExpect > 1 {
			for _, a := range peers {
				req := me
				req.Op = "notify"
				actx, acancel := context.WithTimeout(ctx, 2*time.Second)
				resp, err := n.peers.call(actx, a, req)
				acancel()
				if err == nil && resp.err() != nil && errors.Is(resp.err(), ErrWarehouse) {
					return resp.err()
				}
			}
			if done, err := n.bootstrapIfMet(); done || err != nil {
				return err
			}
		}
		n.log.Warn("cluster: no cluster answered yet; retrying", "attempt", attempt, "in", wait, "err", last)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: no cluster answered at %s within %s (last error: %v); start a node with --bootstrap-expect, or check the addresses",
				strings.Join(peers, ", "), n.cfg.JoinTimeout, last)
		case <-n.stop:
			return ErrShutdown
		case <-time.After(wait):
		}
		wait = min(2*wait, 3*time.Second)
	}
}

// bootstrapIfMet bootstraps the cluster with the nodes that announced themselves once
// there are BootstrapExpect of them (this one included). Every node of the group does the
// same with the same servers, which Raft accepts.
func (n *Node) bootstrapIfMet() (bool, error) {
	n.notifyMu.Lock()
	servers := []raft.Server{{ID: raft.ServerID(n.cfg.ID), Address: raft.ServerAddress(n.Addr())}}
	for id, addr := range n.notified {
		if id != n.cfg.ID {
			servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(addr)})
		}
	}
	n.notifyMu.Unlock()
	if len(servers) < n.cfg.BootstrapExpect {
		return false, nil
	}
	slices.SortFunc(servers, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
	n.log.Info("cluster: bootstrapping", "nodes", len(servers))
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return false, fmt.Errorf("cluster: bootstrapping: %w", err)
	}
	return true, nil
}

// ReadIndex waits until this node's state has applied everything the leader had committed
// when asked (Raft's ReadIndex: the leader first confirms it still leads), so a read that
// follows sees every commit acknowledged before it started.
func (n *Node) ReadIndex(ctx context.Context) error {
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := n.readIndex(ctx)
		if err == nil || !retryable(err) {
			return err
		}
		// Leadership is moving: ask the next leader.
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-n.stop:
			return ErrShutdown
		case <-time.After(wait):
		}
	}
}

func (n *Node) readIndex(ctx context.Context) error {
	var idx uint64
	if n.IsLeader() {
		i, err := n.readIndexLocal()
		if err != nil {
			return err
		}
		idx = i
	} else {
		_, addr := n.Leader()
		if addr == "" {
			return ErrNotLeader
		}
		resp, err := n.peers.call(ctx, addr, request{Op: "readindex"})
		if err == nil {
			err = resp.err()
		}
		if err != nil {
			return err
		}
		idx = resp.Index
	}
	return n.waitApplied(ctx, idx)
}

func (n *Node) readIndexLocal() (uint64, error) {
	if !n.IsLeader() || !n.leaderReady.Load() {
		return 0, ErrNotLeader // a new leader's commit index is the cluster's only after its barrier
	}
	idx := n.raft.CommitIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, err
	}
	return idx, nil
}

// CatchUp waits until this node has applied what it knows the leader has committed (no
// round trip: the leader's commit index arrives with its heartbeats). It fails when no
// leader is known.
func (n *Node) CatchUp(ctx context.Context) error {
	if n.IsLeader() {
		return nil
	}
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		if id, _ := n.Leader(); id != "" {
			break
		}
		select { // an election may be under way
		case <-ctx.Done():
			return ErrNotLeader
		case <-time.After(wait):
		}
	}
	idx := n.raft.CommitIndex()
	return n.waitApplied(ctx, idx)
}

// waitApplied waits until the state has applied log index idx.
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	for wait := 100 * time.Microsecond; n.raft.AppliedIndex() < idx; wait = min(2*wait, 10*time.Millisecond) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting to apply index %d (at %d): %w", idx, n.raft.AppliedIndex(), ctx.Err())
		case <-time.After(wait):
		}
	}
	return nil
}
