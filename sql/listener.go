package sql

import (
	sqle "github.com/dolthub/go-mysql-server"
	"net"
	"time"

	gmsserver "github.com/dolthub/go-mysql-server/server"
	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
)

// Listener is the MySQL protocol endpoint.
type Listener struct {
	srv    *gmsserver.Server
	ln     net.Listener
	engine *sqle.Engine
}

// Listen serves the MySQL protocol on ln. Call Serve to accept connections.
func (e *Engine) Listen(ln net.Listener) (*Listener, error) {
	cfg := gmsserver.Config{
		Protocol: "tcp",
		Address:  ln.Addr().String(),
		Listener: ln,
		Version:  "8.0.33-lakehoused-" + e.cfg.Version,
		// Connections idle longer than this are closed; generous for pooled BI clients.
		ConnReadTimeout:  8 * time.Hour,
		ConnWriteTimeout: 30 * time.Minute,
		MaxConnections:   1000,
		ProtocolListenerFactory: func(c gmsserver.Config, lc mysql.ListenerConfig, sel gmsserver.ServerEventListener) (gmsserver.ProtocolListener, error) {
			lc.Handler = handler{Handler: lc.Handler, e: e}
			return gmsserver.MySQLProtocolListenerFactory(c, lc, sel)
		},
	}
	srv, err := gmsserver.NewServer(cfg, e.sqle, gms.NewContext, e.NewSession, nil)
	if err != nil {
		if srv != nil {
			_ = srv.Close()
		}
		return nil, err
	}
	return &Listener{srv: srv, ln: ln, engine: e.sqle}, nil
}

// Addr is the address clients connect to.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Serve accepts connections until Close.
func (l *Listener) Serve() error { return l.srv.Start() }

// Shutdown stops accepting and closes idle connections at once; connections running a
// statement get up to grace to finish (a statement that commits before its connection
// closes is durable; one cut off was never acknowledged), then they are closed too.
// Pooled clients never hang up by themselves, so waiting for them is not an option.
func (l *Listener) Shutdown(grace time.Duration) {
	_ = l.srv.Close()
	done := make(chan struct{})
	go func() { l.srv.SessionManager().WaitForClosedConnections(); close(done) }()
	deadline := time.Now().Add(grace)
	for {
		// The process list has every connection, including ones that never ran a query
		// and so have no session yet.
		busy := 0
		for _, p := range l.engine.ProcessList.Processes() {
			if p.Command == gms.ProcessCommandQuery && time.Now().Before(deadline) {
				busy++
				continue
			}
			_ = l.srv.SessionManager().KillConnection(p.Connection)
		}
		select {
		case <-done:
			return
		case <-time.After(50 * time.Millisecond):
		}
		if busy == 0 && time.Now().After(deadline.Add(5*time.Second)) {
			return // closed connections that never deregistered; do not hang the process
		}
	}
}
