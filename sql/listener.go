package sql

import (
	"net"
	"time"

	gmsserver "github.com/dolthub/go-mysql-server/server"
	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
)

// Listener is the MySQL protocol endpoint.
type Listener struct {
	srv *gmsserver.Server
	ln  net.Listener
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
			lc.Handler = handler{lc.Handler}
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
	return &Listener{srv: srv, ln: ln}, nil
}

// Addr is the address clients connect to.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Serve accepts connections until Close.
func (l *Listener) Serve() error { return l.srv.Start() }

// Shutdown stops accepting, waits up to grace for clients to finish, then closes the
// connections still open (pooled clients never hang up by themselves). Statements in flight
// either commit before their connection closes or are not acknowledged.
func (l *Listener) Shutdown(grace time.Duration) {
	_ = l.srv.Close()
	done := make(chan struct{})
	go func() { l.srv.SessionManager().WaitForClosedConnections(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	var ids []uint32
	_ = l.srv.SessionManager().Iter(func(s gms.Session) (bool, error) {
		ids = append(ids, s.ID())
		return false, nil
	})
	for _, id := range ids {
		_ = l.srv.SessionManager().KillConnection(id)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}
