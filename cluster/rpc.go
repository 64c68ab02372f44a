package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lakehoused/lakehoused/storage"
)

// One port per node carries both Raft's own traffic and the cluster's requests between
// nodes (forwarded commands, joins, status), told apart by the first byte of each
// connection. A node is then reachable at the one address its peers already know, and a
// firewall opens one port.

const (
	connRaft byte = 'R' // hashicorp/raft's NetworkTransport protocol follows
	connRPC  byte = 'C' // length-prefixed JSON requests and responses follow
)

// ErrUnreachable is a peer that could not be asked (connection refused, reset or timed
// out). A command sent to it may or may not have run; retrying is safe, since a retry of
// the same commits is recognised by their content.
var ErrUnreachable = errors.New("cluster: peer unreachable")

// ErrWarehouse refuses a node whose warehouse is not the cluster's.
var ErrWarehouse = errors.New("cluster: the warehouse is not shared with the cluster")

// ErrMembership is a membership change that cannot be made (a duplicate id or address,
// removing the last voter, an unknown node).
var ErrMembership = errors.New("cluster: membership")

// muxLayer is the raft.StreamLayer of a node's port: it hands Raft the connections that
// start with connRaft and serves the others as requests.
type muxLayer struct {
	ln        net.Listener
	advertise net.Addr // the address other nodes reach this one at
	dialer    *net.Dialer
	raft      chan net.Conn
	serve     func(net.Conn)
	done      chan struct{}
	once      sync.Once
}

// listenMux listens on addr. advertise ("" = the address listened on) is where other
// nodes reach this one, through a proxy or a NAT. Connections to other nodes leave from
// the listening IP when it is a specific one, so each node is told apart by its IP.
func listenMux(addr, advertise string, serve func(net.Conn)) (*muxLayer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &muxLayer{ln: ln, advertise: ln.Addr(), dialer: &net.Dialer{}, raft: make(chan net.Conn, 16), serve: serve, done: make(chan struct{})}
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("cluster: advertise address %s: %w", advertise, err)
		}
		m.advertise = a
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsUnspecified() {
		m.dialer.LocalAddr = &net.TCPAddr{IP: ip}
	}
	if a := m.advertise.(*net.TCPAddr); a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("cluster: %s is no address other nodes can reach; give an advertise address (--raft-advertise)", a)
	}
	go m.accept()
	return m, nil
}

func (m *muxLayer) accept() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go m.route(c)
	}
}

func (m *muxLayer) route(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	switch b[0] {
	case connRaft:
		select {
		case m.raft <- c:
		case <-m.done:
			c.Close()
		}
	case connRPC:
		m.serve(c)
	default:
		c.Close()
	}
}

// Accept implements net.Listener for Raft.
func (m *muxLayer) Accept() (net.Conn, error) {
	select {
	case c := <-m.raft:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *muxLayer) Close() error {
	m.once.Do(func() { close(m.done) })
	return m.ln.Close()
}

func (m *muxLayer) Addr() net.Addr { return m.advertise }

// Dial implements raft.StreamLayer.
func (m *muxLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return m.dialKind(string(addr), timeout, connRaft)
}

func (m *muxLayer) dialKind(addr string, timeout time.Duration, kind byte) (net.Conn, error) {
	d := *m.dialer
	d.Timeout = timeout
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// request is one call from a node to another.
type request struct {
	Op string `json:"op"` // apply, join, notify, remove, status, readindex
	// Cmd is the command to apply (apply).
	Cmd []byte `json:"cmd,omitempty"`
	// ID, Addr and Identity describe the node asking to join or announcing itself; ID
	// names the node to remove.
	ID       string `json:"id,omitempty"`
	Addr     string `json:"addr,omitempty"`
	Identity string `json:"identity,omitempty"`
}

// response answers a request. Code classifies an error so the caller gets the same
// sentinel errors as on the leader itself.
type response struct {
	Code   string        `json:"code,omitempty"`
	Error  string        `json:"error,omitempty"`
	Index  uint64        `json:"index,omitempty"`
	Taken  *VersionTaken `json:"taken,omitempty"`
	Status *NodeStatus   `json:"status,omitempty"`
}

var errCodes = []struct {
	code string
	err  error
}{
	{"outcome_unknown", storage.ErrOutcomeUnknown}, // first: it may wrap any of the others
	{"conflict", ErrConflict}, {"gap", ErrGap}, {"not_leader", ErrNotLeader},
	{"leadership_lost", raft.ErrLeadershipLost}, {"shutdown", ErrShutdown},
	{"warehouse", ErrWarehouse}, {"membership", ErrMembership}, {"taken", ErrTakenOutside},
}

func encodeErr(err error) response {
	if err == nil {
		return response{}
	}
	var taken *VersionTaken
	if errors.As(err, &taken) && !errors.Is(err, storage.ErrOutcomeUnknown) {
		return response{Code: "conflict", Error: err.Error(), Taken: taken}
	}
	if retryable(err) && !errors.Is(err, raft.ErrLeadershipLost) && !errors.Is(err, storage.ErrOutcomeUnknown) {
		return response{Code: "not_leader", Error: err.Error()}
	}
	for _, e := range errCodes {
		if errors.Is(err, e.err) {
			return response{Code: e.code, Error: err.Error()}
		}
	}
	return response{Code: "error", Error: err.Error()}
}

// remoteError is an error from another node, which errors.Is matches against the
// sentinel its code names.
type remoteError struct {
	msg string
	is  error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.is }

func (r response) err() error {
	if r.Code == "" {
		return nil
	}
	if r.Taken != nil {
		return r.Taken
	}
	for _, e := range errCodes {
		if e.code == r.Code {
			return &remoteError{msg: r.Error, is: e.err}
		}
	}
	return &remoteError{msg: r.Error}
}

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(append(hdr[:], b...)); err != nil {
		return err
	}
	return nil
}

// maxFrame bounds a request: commands carry commit files, which are small, but a
// multi-table transaction may carry several.
const maxFrame = 256 << 20

func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return fmt.Errorf("cluster: a %d-byte message is over the %d-byte limit", n, maxFrame)
	}
	// Read as the bytes arrive, not into a buffer of the announced size: a header alone
	// must not make the node allocate.
	lr := &io.LimitedReader{R: r, N: int64(n)}
	if err := json.NewDecoder(lr).Decode(v); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, lr); err != nil { // trailing whitespace, if any
		return err
	}
	if lr.N != 0 {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// serveConn answers requests on one connection until the peer closes it.
func (n *Node) serveConn(c net.Conn) {
	defer c.Close()
	select {
	case <-n.ready:
	case <-n.stop:
		return
	}
	r := bufio.NewReader(c)
	for {
		var req request
		if err := readFrame(r, &req); err != nil {
			return
		}
		resp := n.handle(req)
		if err := writeFrame(c, resp); err != nil {
			return
		}
	}
}

// handle runs one request from another node.
func (n *Node) handle(req request) response {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch req.Op {
	case "apply":
		return encodeErr(n.Apply(ctx, req.Cmd))
	case "join":
		return encodeErr(n.admit(ctx, req))
	case "notify":
		return encodeErr(n.noticed(req))
	case "remove":
		if !n.IsLeader() {
			return encodeErr(ErrNotLeader)
		}
		return encodeErr(n.removeLocal(req.ID))
	case "status":
		st := n.Status()
		return response{Status: &st}
	case "readindex":
		idx, err := n.readIndexLocal()
		r := encodeErr(err)
		r.Index = idx
		return r
	}
	return response{Code: "error", Error: fmt.Sprintf("cluster: unknown request %q", req.Op)}
}

// peers keeps idle connections to other nodes, so a forwarded commit does not pay for a
// TCP handshake.
type peers struct {
	mux  *muxLayer // nil without a network (tests' in-memory transport)
	mu   sync.Mutex
	idle map[string][]net.Conn
	shut bool
}

// call sends req to the node at addr and waits for its answer, within ctx (30 s without a
// deadline). A connection that fails is dropped; the error wraps ErrUnreachable.
func (p *peers) call(ctx context.Context, addr string, req request) (response, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	c, err := p.get(addr, time.Until(deadline))
	if err != nil {
		return response{}, fmt.Errorf("%w: %s: %v", ErrUnreachable, addr, err)
	}
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) }) // cancelled: unblock
	defer stop()
	var resp response
	if err := writeFrame(c, req); err != nil {
		c.Close()
		return response{}, fmt.Errorf("%w: %s: %v", ErrUnreachable, addr, err)
	}
	if err := readFrame(c, &resp); err != nil {
		c.Close()
		return response{}, fmt.Errorf("%w: %s: %v", ErrUnreachable, addr, err)
	}
	c.SetDeadline(time.Time{})
	p.put(addr, c)
	return resp, nil
}

func (p *peers) get(addr string, timeout time.Duration) (net.Conn, error) {
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		return nil, ErrShutdown
	}
	if cs := p.idle[addr]; len(cs) > 0 {
		c := cs[len(cs)-1]
		p.idle[addr] = cs[:len(cs)-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	if p.mux == nil {
		return nil, ErrNotLeader
	}
	return p.mux.dialKind(addr, min(timeout, 5*time.Second), connRPC)
}

func (p *peers) put(addr string, c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut || len(p.idle[addr]) >= 8 {
		c.Close()
		return
	}
	if p.idle == nil {
		p.idle = map[string][]net.Conn{}
	}
	p.idle[addr] = append(p.idle[addr], c)
}

func (p *peers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shut = true
	for _, cs := range p.idle {
		for _, c := range cs {
			c.Close()
		}
	}
	p.idle = nil
}

// forward is Config.Forward over the network: the command runs in the leader's Apply.
func (n *Node) forward(ctx context.Context, leaderID, leaderAddr string, cmd []byte) error {
	// One attempt: given up when another node leads meanwhile (this one may be frozen or
	// cut off), or after 10 s; the caller retries with the leader of the moment.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if id, _ := n.Leader(); id != "" && id != leaderID {
					cancel()
					return
				}
			}
		}
	}()
	resp, err := n.peers.call(ctx, leaderAddr, request{Op: "apply", Cmd: cmd})
	if err != nil {
		return err
	}
	return resp.err()
}
