package sql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/lakehoused/lakehoused/catalog"
	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// Session is one client connection. Its transaction pins a snapshot of each table at first
// access and buffers the writes of every statement until commit (see Transaction).
type Session struct {
	*gms.BaseSession
	engine *Engine
}

var (
	_ gms.Session            = (*Session)(nil)
	_ gms.TransactionSession = (*Session)(nil)
)

// NewSession is the server's session builder.
func (e *Engine) NewSession(_ context.Context, conn *mysql.Conn, addr string) (gms.Session, error) {
	host, user := "", ""
	if u, ok := conn.UserData.(gms.MysqlConnectionUser); ok {
		host, user = u.Host, u.User
	}
	client := gms.Client{Address: host, User: user, Capabilities: conn.Capabilities}
	s := &Session{BaseSession: gms.NewBaseSessionWithClientServer(addr, client, conn.ConnectionID), engine: e}
	e.sessions.Store(conn.ConnectionID, s)
	return s, nil
}

// StartTransaction begins a transaction. It does no I/O: snapshots are pinned lazily, table
// by table, when a statement first touches the table.
func (s *Session) StartTransaction(_ *gms.Context, c gms.TransactionCharacteristic) (gms.Transaction, error) {
	return newTransaction(c == gms.ReadOnly), nil
}

// CommitTransaction writes the data files of every table the transaction changed and
// commits each table's log. With the Raft coordinator (the default) the tables' commits
// are ratified in one log entry, all or none. Without it (--raft-addr off), tables commit
// one after another in first-write order; a failure part-way leaves earlier tables
// committed, and the error says which.
func (s *Session) CommitTransaction(ctx *gms.Context, tx gms.Transaction) error {
	t, ok := tx.(*Transaction)
	if !ok || t == nil {
		return nil
	}
	defer t.reset()
	var writes []*tableWrites
	for _, w := range t.order {
		if !w.empty() {
			writes = append(writes, w)
		}
	}
	if len(writes) > 1 && s.engine.cfg.Cluster != nil {
		return s.engine.commitAtomically(ctx, writes)
	}
	var done []string
	for _, w := range t.order {
		if w.empty() {
			continue
		}
		if err := s.engine.commitTable(ctx, w); err != nil {
			// Tables after this one are never committed: files their copies already
			// wrote must go. (This table's commit deleted its own unless its outcome is
			// unknown.)
			after := false
			for _, o := range t.order {
				if after {
					deleteFiles(o.table.Store, o.spilled)
				}
				after = after || o == w
			}
			if len(done) > 0 {
				return fmt.Errorf("%w (tables already committed in this transaction: %s)", err, strings.Join(done, ", "))
			}
			return err
		}
		done = append(done, w.table.Entry.Database+"."+w.table.Entry.Name)
	}
	return nil
}

// Rollback drops everything the transaction buffered; nothing was written yet.
func (s *Session) Rollback(ctx *gms.Context, tx gms.Transaction) error {
	if t, ok := tx.(*Transaction); ok && t != nil {
		for _, w := range t.order {
			deleteFiles(w.table.Store, w.spilled)
		}
		t.reset()
	}
	return nil
}

// Savepoints are not supported yet; say so rather than pretend.
func (s *Session) CreateSavepoint(*gms.Context, gms.Transaction, string) error {
	return errSavepoints
}

func (s *Session) RollbackToSavepoint(*gms.Context, gms.Transaction, string) error {
	return errSavepoints
}

func (s *Session) ReleaseSavepoint(*gms.Context, gms.Transaction, string) error {
	return errSavepoints
}

var errSavepoints = mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "savepoints are not supported by lakehoused yet")

// Transaction is the unit of isolation: each table is read at the version pinned on first
// access, and writes are buffered per table until CommitTransaction.
type Transaction struct {
	readOnly bool
	snaps    map[*catalog.Table]*txlog.Snapshot
	writes   map[*catalog.Table]*tableWrites
	order    []*tableWrites
}

var _ gms.Transaction = (*Transaction)(nil)

func newTransaction(readOnly bool) *Transaction {
	t := &Transaction{readOnly: readOnly}
	t.reset()
	return t
}

func (t *Transaction) reset() {
	t.snaps = map[*catalog.Table]*txlog.Snapshot{}
	t.writes = map[*catalog.Table]*tableWrites{}
	t.order = nil
}

func (t *Transaction) String() string { return "lakehoused transaction" }

// IsReadOnly reports START TRANSACTION READ ONLY.
func (t *Transaction) IsReadOnly() bool { return t.readOnly }

func transactionOf(ctx *gms.Context) *Transaction {
	if ctx == nil {
		return nil
	}
	t, _ := ctx.GetTransaction().(*Transaction)
	return t
}

// snapshot returns the version of ct this transaction reads, pinning the latest on first use.
func (t *Transaction) snapshot(ctx context.Context, ct *catalog.Table) (*txlog.Snapshot, error) {
	if t != nil {
		if s, ok := t.snaps[ct]; ok {
			return s, nil
		}
	}
	s, err := ct.Log.Snapshot(ctx, -1)
	if err != nil {
		return nil, tableError(ct, err)
	}
	if t != nil {
		t.snaps[ct] = s
	}
	return s, nil
}

func (t *Transaction) writesFor(tb *Table) (*tableWrites, error) {
	w, ok := t.writes[tb.ct]
	if !ok {
		if tb.ct.Entry.ReadOnly {
			return nil, readOnlyError(tb.ct, "writing")
		}
		as, err := table.ArrowSchema(tb.snap.Schema)
		if err != nil {
			return nil, tableError(tb.ct, err)
		}
		var pk []int
		if len(tb.pkCols) > 0 {
			pk = tb.schema.PkOrdinals
		}
		w = newTableWrites(tb.ct, tb.snap, pk, tb.schema.Schema, as)
		t.writes[tb.ct] = w
		t.order = append(t.order, w)
	}
	return w, nil
}

// tableError turns a log error into a MySQL error that names the table.
func tableError(ct *catalog.Table, err error) error {
	name := ct.Entry.Database + "." + ct.Entry.Name
	switch {
	case errors.Is(err, txlog.ErrUnsupportedFeature):
		return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "table %s: %v", name, err)
	case errors.Is(err, txlog.ErrCorruptLog), errors.Is(err, txlog.ErrNoTable):
		return mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState, "table %s cannot be read: %v", name, err)
	case errors.Is(err, txlog.ErrConflict):
		return mysql.NewSQLError(mysql.ERLockDeadlock, mysql.SSLockDeadlock, "table %s: %v", name, err)
	}
	return fmt.Errorf("table %s: %w", name, err)
}
