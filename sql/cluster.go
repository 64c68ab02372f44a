package sql

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"
)

// Cluster is the node's membership of its cluster, as the SQL surface uses it: the
// lake_cluster_* procedures and table function, and the read consistency of sessions.
type Cluster interface {
	// Join adds the node id, listening at its Raft address, as a voter.
	Join(ctx context.Context, id, addr string) error
	// Remove takes node id out of the cluster.
	Remove(ctx context.Context, id string) error
	// Nodes lists the members with what each says of itself.
	Nodes(ctx context.Context) ([]ClusterNode, error)
	// Sync waits until a read on this node may start at the given level (one of
	// ReadConsistencies).
	Sync(ctx context.Context, level string) error
	// Atomic returns a context under which the concurrent commits of tables tables are
	// ratified together, all or none, and the function each table's commit calls when it
	// is done, with its error (which aborts the others).
	Atomic(ctx context.Context, tables int) (context.Context, func(error))
}

// atomicKey marks a context whose commits belong to a multi-table transaction: they are
// not coalesced with other sessions' (group commit), since they commit with their
// transaction's other tables or not at all.
type atomicKey struct{}

// commitAtomically commits a transaction's tables at once, each in its own goroutine, all
// ratified in one log entry: if one fails, none commits. (Without a cluster, tables
// commit one after another.)
func (e *Engine) commitAtomically(ctx *gms.Context, writes []*tableWrites) error {
	actx, leave := e.cfg.Cluster.Atomic(ctx, len(writes))
	actx = context.WithValue(actx, atomicKey{}, true)
	errs := make(chan error, len(writes))
	for _, w := range writes {
		go func() {
			err := e.commitTable(ctx.WithContext(actx), w)
			leave(err)
			errs <- err
		}()
	}
	var first error
	for range writes {
		if err := <-errs; err != nil && first == nil {
			first = err // the cause: the other tables fail only after it
		}
	}
	return first
}

// ClusterNode is one row of lake_cluster_nodes(). LastContact and AppliedIndex are nil for
// a node that did not answer.
type ClusterNode struct {
	ID, Address, Role string
	Leader            bool
	LastContact       *time.Time
	AppliedIndex      *uint64
}

// ReadConsistencies are the values of lake_read_consistency:
//   - local: read what this node has, without waiting;
//   - leader (default): first apply what this node knows the leader has committed;
//   - linearizable: first ask the leader for its commit index (it confirms it still leads
//     with a quorum) and apply up to it, so the read sees every commit acknowledged
//     anywhere before it began.
var ReadConsistencies = []string{"local", "leader", "linearizable"}

const readConsistencyVar = "lake_read_consistency"

func clusterVariables() []gms.SystemVariable {
	return []gms.SystemVariable{&gms.MysqlSystemVariable{
		Name:    readConsistencyVar,
		Scope:   gms.GetMysqlScope(gms.SystemVariableScope_Both),
		Dynamic: true,
		Type:    types.NewSystemEnumType(readConsistencyVar, ReadConsistencies...),
		Default: "leader",
	}}
}

// readsNothing matches statements that read no table (session settings, variables): they
// run without waiting, so a node cut off from its leader still takes
// SET lake_read_consistency = 'local'.
var readsNothing = regexp.MustCompile(`(?is)^\s*(SET|USE|SHOW\s+(SESSION\s+|GLOBAL\s+)?(VARIABLES|STATUS|WARNINGS|ERRORS)|SELECT\s+@@[\w.]+\s*(,\s*@@[\w.]+\s*)*;?\s*$|COMMIT|ROLLBACK|BEGIN|START\s+TRANSACTION)\b`)

// syncReads makes the connection's next statement wait for its read consistency.
func (e *Engine) syncReads(ctx context.Context, connID uint32, query string) error {
	if e == nil || e.cfg.Cluster == nil || readsNothing.MatchString(query) {
		return nil
	}
	level := "leader"
	if v, ok := e.sessions.Load(connID); ok {
		if val, err := v.(*Session).GetSessionVariable(nil, readConsistencyVar); err == nil {
			level = strings.ToLower(fmt.Sprint(val))
		}
	}
	if err := e.cfg.Cluster.Sync(ctx, level); err != nil {
		return mysql.NewSQLError(mysql.ERUnknownError, "HY000",
			"cannot read at lake_read_consistency '%s': %v (SET lake_read_consistency = 'local' reads what this node has)", level, err)
	}
	return nil
}

var clusterNodesSchema = gms.Schema{
	{Name: "id", Type: types.LongText}, {Name: "address", Type: types.LongText}, {Name: "role", Type: types.LongText},
	{Name: "leader", Type: types.Boolean}, {Name: "last_contact", Type: types.DatetimeMaxPrecision, Nullable: true},
	{Name: "applied_index", Type: types.Uint64, Nullable: true},
}

func lakeClusterNodes(ctx *gms.Context, e *Engine, _ []any) ([]gms.Row, error) {
	c, err := e.cluster("lake_cluster_nodes")
	if err != nil {
		return nil, err
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, mysql.NewSQLError(mysql.ERUnknownError, "HY000", "lake_cluster_nodes: %v", err)
	}
	rows := make([]gms.Row, len(nodes))
	for i, n := range nodes {
		row := gms.Row{n.ID, n.Address, n.Role, n.Leader, nil, nil}
		if n.LastContact != nil {
			row[4] = *n.LastContact
		}
		if n.AppliedIndex != nil {
			row[5] = *n.AppliedIndex
		}
		rows[i] = row
	}
	return rows, nil
}

func (e *Engine) cluster(what string) (Cluster, error) {
	if e.cfg.Cluster == nil {
		return nil, mysql.NewSQLError(mysql.ERNotSupportedYet, "HY000", "%s: this node runs without the Raft coordinator (--raft-addr off)", what)
	}
	return e.cfg.Cluster, nil
}

func clusterProcedures(e *Engine) []gms.ExternalStoredProcedureDetails {
	ok := gms.Schema{{Name: "status", Type: types.LongText}}
	return []gms.ExternalStoredProcedureDetails{
		{Name: "lake_cluster_join", Schema: ok, Function: func(ctx *gms.Context, id, addr string) (gms.RowIter, error) {
			c, err := e.cluster("lake_cluster_join")
			if err != nil {
				return nil, err
			}
			if err := c.Join(ctx, id, addr); err != nil {
				return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_cluster_join('%s', '%s'): %v", id, addr, err)
			}
			return gms.RowsToRowIter(gms.Row{fmt.Sprintf("node %s at %s is a voter", id, addr)}), nil
		}},
		{Name: "lake_cluster_remove", Schema: ok, Function: func(ctx *gms.Context, id string) (gms.RowIter, error) {
			c, err := e.cluster("lake_cluster_remove")
			if err != nil {
				return nil, err
			}
			if err := c.Remove(ctx, id); err != nil {
				return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_cluster_remove('%s'): %v", id, err)
			}
			return gms.RowsToRowIter(gms.Row{"removed node " + id}), nil
		}},
	}
}
