package sql

import (
	"encoding/json"
	"fmt"
	"strconv"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/lakehoused/lakehoused/catalog"
	"github.com/lakehoused/lakehoused/txlog"
)

// Table functions over a table's log: lake_history('db.t') and lake_files('db.t'[, version]).
// Arguments must be literals: GMS builds table functions while planning, before prepared
// statement parameters are bound.

type tableFunc struct {
	engine *Engine
	name   string
	schema gms.Schema
	run    func(ctx *gms.Context, e *Engine, args []any) ([]gms.Row, error)
	minArg int
	maxArg int

	db   gms.Database
	args []gms.Expression
}

var (
	_ gms.TableFunction = (*tableFunc)(nil)
	_ gms.ExecSourceRel = (*tableFunc)(nil)
	// GMS's join planner treats table functions as tables (a subquery over one in an IN
	// list panics otherwise).
	_ gms.TableNode = (*tableFunc)(nil)
)

func (f *tableFunc) Collation() gms.CollationID { return gms.Collation_Default }
func (f *tableFunc) CollationCoercibility(*gms.Context) (gms.CollationID, byte) {
	return gms.Collation_Default, 4 // implicit, like a column
}
func (f *tableFunc) UnderlyingTable() gms.Table { return f }
func (f *tableFunc) Partitions(*gms.Context) (gms.PartitionIter, error) {
	return gms.PartitionsToPartitionIter(partition{}), nil
}
func (f *tableFunc) PartitionRows(ctx *gms.Context, _ gms.Partition) (gms.RowIter, error) {
	return f.RowIter(ctx, nil)
}

func (f *tableFunc) Name() string                  { return f.name }
func (f *tableFunc) String() string                { return f.name + "(…)" }
func (f *tableFunc) Resolved() bool                { return true }
func (f *tableFunc) Schema() gms.Schema            { return f.schema }
func (f *tableFunc) Children() []gms.Node          { return nil }
func (f *tableFunc) IsReadOnly() bool              { return true }
func (f *tableFunc) Database() gms.Database        { return f.db }
func (f *tableFunc) Expressions() []gms.Expression { return f.args }
func (f *tableFunc) WithChildren(c ...gms.Node) (gms.Node, error) {
	if len(c) != 0 {
		return nil, gms.ErrInvalidChildrenNumber.New(f, len(c), 0)
	}
	return f, nil
}
func (f *tableFunc) WithExpressions(e ...gms.Expression) (gms.Node, error) {
	nf := *f
	nf.args = e
	return &nf, nil
}
func (f *tableFunc) WithDatabase(db gms.Database) (gms.Node, error) {
	nf := *f
	nf.db = db
	return &nf, nil
}

func (f *tableFunc) NewInstance(_ *gms.Context, db gms.Database, args []gms.Expression) (gms.Node, error) {
	if len(args) < f.minArg || len(args) > f.maxArg {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "%s takes %d to %d arguments, got %d", f.name, f.minArg, f.maxArg, len(args))
	}
	nf := *f
	nf.db, nf.args = db, args
	return &nf, nil
}

func (f *tableFunc) RowIter(ctx *gms.Context, r gms.Row) (gms.RowIter, error) {
	vals := make([]any, len(f.args))
	for i, a := range f.args {
		v, err := a.Eval(ctx, r)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	rows, err := f.run(ctx, f.engine, vals)
	if err != nil {
		return nil, err
	}
	return gms.RowsToRowIter(rows...), nil
}

func tableFunctions(e *Engine) []gms.TableFunction {
	return []gms.TableFunction{
		&tableFunc{engine: e, name: "lake_history", minArg: 1, maxArg: 1, run: lakeHistory, schema: gms.Schema{
			{Name: "version", Type: types.Int64}, {Name: "timestamp", Type: types.DatetimeMaxPrecision},
			{Name: "operation", Type: types.LongText}, {Name: "operation_parameters", Type: types.JSON, Nullable: true},
			{Name: "read_version", Type: types.Int64, Nullable: true}, {Name: "isolation_level", Type: types.LongText, Nullable: true},
			{Name: "is_blind_append", Type: types.Boolean, Nullable: true}, {Name: "operation_metrics", Type: types.JSON, Nullable: true},
			{Name: "user_name", Type: types.LongText, Nullable: true}, {Name: "engine_info", Type: types.LongText, Nullable: true},
		}},
		&tableFunc{engine: e, name: "lake_files", minArg: 1, maxArg: 2, run: lakeFiles, schema: gms.Schema{
			{Name: "path", Type: types.LongText}, {Name: "partition_values", Type: types.JSON},
			{Name: "size_bytes", Type: types.Int64}, {Name: "num_records", Type: types.Int64, Nullable: true},
			{Name: "min_values", Type: types.JSON, Nullable: true}, {Name: "max_values", Type: types.JSON, Nullable: true},
			{Name: "null_count", Type: types.JSON, Nullable: true}, {Name: "modification_time", Type: types.DatetimeMaxPrecision},
		}},
		&tableFunc{engine: e, name: "lake_connections", minArg: 0, maxArg: 0, run: lakeConnections, schema: gms.Schema{
			{Name: "name", Type: types.LongText}, {Name: "kind", Type: types.LongText},
			{Name: "url", Type: types.LongText}, {Name: "created", Type: types.DatetimeMaxPrecision},
		}},
		&tableFunc{engine: e, name: "lake_cluster_nodes", minArg: 0, maxArg: 0, run: lakeClusterNodes, schema: clusterNodesSchema},
		&tableFunc{engine: e, name: "lake_properties", minArg: 1, maxArg: 1, run: lakeProperties, schema: gms.Schema{
			{Name: "key", Type: types.LongText}, {Name: "value", Type: types.LongText}, {Name: "source", Type: types.LongText},
		}},
	}
}

// resolveTable finds 'db.t' (or 't' in the current database).
func resolveTable(ctx *gms.Context, e *Engine, arg any) (*catalog.Table, error) {
	s, ok := arg.(string)
	if !ok || s == "" {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "expected a table name like 'db.table', got %v", arg)
	}
	db, name, err := splitTableName(ctx, s)
	if err != nil {
		return nil, err
	}
	ct, err := e.cfg.Catalog.Table(db, name)
	if err != nil {
		return nil, catalogError(err)
	}
	return ct, nil
}

func jsonDoc(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var x any
	_ = json.Unmarshal(b, &x)
	if x == nil {
		return nil
	}
	return types.JSONDocument{Val: x}
}

func lakeHistory(ctx *gms.Context, e *Engine, args []any) ([]gms.Row, error) {
	ct, err := resolveTable(ctx, e, args[0])
	if err != nil {
		return nil, err
	}
	commits, err := ct.Log.History(ctx, 0)
	if err != nil {
		return nil, tableError(ct, err)
	}
	rows := make([]gms.Row, 0, len(commits))
	for _, c := range commits {
		r := gms.Row{c.Version, c.Timestamp.UTC(), "", nil, nil, nil, nil, nil, nil, nil}
		if ci := c.Info; ci != nil {
			r[2] = ci.Operation
			r[3] = jsonDoc(ci.OperationParameters)
			if ci.ReadVersion != nil {
				r[4] = *ci.ReadVersion
			}
			if ci.IsolationLevel != "" {
				r[5] = ci.IsolationLevel
			}
			if ci.IsBlindAppend != nil {
				r[6] = boolInt(*ci.IsBlindAppend)
			}
			r[7] = jsonDoc(ci.OperationMetrics)
			if ci.UserName != "" {
				r[8] = ci.UserName
			}
			if ci.EngineInfo != "" {
				r[9] = ci.EngineInfo
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func boolInt(b bool) int8 {
	if b {
		return 1
	}
	return 0
}

func lakeFiles(ctx *gms.Context, e *Engine, args []any) ([]gms.Row, error) {
	ct, err := resolveTable(ctx, e, args[0])
	if err != nil {
		return nil, err
	}
	version := int64(-1)
	if len(args) > 1 {
		v, err := strconv.ParseInt(fmt.Sprint(args[1]), 10, 64)
		if err != nil || v < 0 {
			return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_files: version must be a non-negative integer, got %v", args[1])
		}
		version = v
	}
	snap, err := ct.Log.Snapshot(ctx, version)
	if err != nil {
		return nil, tableError(ct, err)
	}
	rows := make([]gms.Row, 0, len(snap.Files))
	for _, f := range snap.Files {
		pv := map[string]any{}
		for k, v := range f.PartitionValues {
			if v == "" {
				pv[k] = nil // Delta writes NULL partition values as ""
			} else {
				pv[k] = v
			}
		}
		r := gms.Row{f.Path, jsonDoc(pv), f.Size, nil, nil, nil, nil, timeMs(f.ModificationTime)}
		if st, err := txlog.ParseStats(f.Stats); err == nil && st != nil {
			r[3] = st.NumRecords
			r[4] = jsonDoc(st.MinValues)
			r[5] = jsonDoc(st.MaxValues)
			r[6] = jsonDoc(st.NullCount)
		}
		rows = append(rows, r)
	}
	return rows, nil
}
