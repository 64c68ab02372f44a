package sql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/vt/sqlparser"

	"github.com/lakehoused/lakehoused/catalog"
	"github.com/lakehoused/lakehoused/compaction"
	"github.com/lakehoused/lakehoused/txlog"
)

// Table maintenance: lake_optimize, lake_zorder, lake_vacuum, lake_checkpoint,
// lake_set_property and the lake_properties table function. The work is done by
// compaction/ and txlog/; this file resolves names, checks arguments, reports progress and
// turns results into rows.

// vacuumRetentionCheck is the session variable that guards against VACUUM retention below
// the default (which would break time travel and readers still on old versions).
const vacuumRetentionCheck = "lake_vacuum_retention_check"

func maintenanceVariables() []gms.SystemVariable {
	return []gms.SystemVariable{&gms.MysqlSystemVariable{
		Name:    vacuumRetentionCheck,
		Scope:   gms.GetMysqlScope(gms.SystemVariableScope_Both),
		Dynamic: true,
		Type:    types.NewSystemBoolType(vacuumRetentionCheck),
		Default: int8(1),
	}}
}

var optimizeSchema = gms.Schema{
	{Name: "files_removed", Type: types.Int64}, {Name: "files_added", Type: types.Int64},
	{Name: "bytes_removed", Type: types.Int64}, {Name: "bytes_added", Type: types.Int64},
	{Name: "partitions_optimized", Type: types.Int64},
	{Name: "min_file_size", Type: types.Int64}, {Name: "p50_file_size", Type: types.Int64}, {Name: "max_file_size", Type: types.Int64},
	{Name: "version", Type: types.Int64, Nullable: true},
}

func maintenanceProcedures(e *Engine) []gms.ExternalStoredProcedureDetails {
	return []gms.ExternalStoredProcedureDetails{
		{Name: "lake_optimize", Function: e.lakeOptimize, Schema: optimizeSchema},
		{Name: "lake_zorder", Function: e.lakeZOrder, Schema: optimizeSchema},
		{Name: "lake_vacuum", Function: e.lakeVacuum, Schema: gms.Schema{
			{Name: "files_deleted", Type: types.Int64}, {Name: "bytes_deleted", Type: types.Int64},
			{Name: "dry_run", Type: types.Boolean}, {Name: "version", Type: types.Int64, Nullable: true},
		}},
		{Name: "lake_checkpoint", Function: e.lakeCheckpoint, Schema: gms.Schema{
			{Name: "version", Type: types.Int64}, {Name: "commits_deleted", Type: types.Int64},
			{Name: "checkpoints_deleted", Type: types.Int64}, {Name: "earliest_version", Type: types.Int64},
		}},
		{Name: "lake_set_property", Function: e.lakeSetProperty, Schema: gms.Schema{
			{Name: "key", Type: types.LongText}, {Name: "value", Type: types.LongText, Nullable: true}, {Name: "version", Type: types.Int64},
		}},
	}
}

// Jobs returns the registry of running maintenance jobs (GET /api/jobs).
func (e *Engine) Jobs() *compaction.Jobs { return e.jobs }

// maintained resolves a table for a maintenance operation: it must exist and be writable.
func (e *Engine) maintained(ctx *gms.Context, op, name string) (*catalog.Table, compaction.Table, error) {
	ct, err := resolveTable(ctx, e, name)
	if err != nil {
		return nil, compaction.Table{}, err
	}
	full := ct.Entry.Database + "." + ct.Entry.Name
	if ct.Entry.ReadOnly {
		return nil, compaction.Table{}, readOnlyError(ct, op)
	}
	return ct, compaction.Table{Name: full, Store: ct.Store, Log: ct.Log, Committer: e.cfg.Committer}, nil
}

// readOnlyError is MySQL's 1036 for a table attached READ ONLY.
func readOnlyError(ct *catalog.Table, op string) error {
	return mysql.NewSQLError(erOpenAsReadonly, "HY000", "Table '%s.%s' is read only (attached READ ONLY from %s); %s is not allowed",
		ct.Entry.Database, ct.Entry.Name, ct.Entry.Location, op)
}

// startJob registers a job whose progress shows in SHOW PROCESSLIST for this connection.
func (e *Engine) startJob(ctx *gms.Context, kind, table string) *compaction.Job {
	return e.jobs.Start(kind, table, ctx.Session.ID())
}

// maintenanceError maps compaction and log errors to MySQL errors naming the operation.
func maintenanceError(ct *catalog.Table, op string, err error) error {
	switch {
	case errors.Is(err, compaction.ErrBadArgument):
		return mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "%s %s.%s: %s", op, ct.Entry.Database, ct.Entry.Name,
			strings.TrimPrefix(err.Error(), compaction.ErrBadArgument.Error()+": "))
	case errors.Is(err, txlog.ErrConflict):
		return mysql.NewSQLError(mysql.ERLockDeadlock, mysql.SSLockDeadlock, "%s %s.%s: %v", op, ct.Entry.Database, ct.Entry.Name, err)
	}
	var se *mysql.SQLError
	if errors.As(err, &se) {
		return err
	}
	return tableError(ct, fmt.Errorf("%s: %w", op, err))
}

func optimizeRow(r compaction.Result) gms.Row {
	var v any
	if r.Version >= 0 {
		v = r.Version
	}
	return gms.Row{r.FilesRemoved, r.FilesAdded, r.BytesRemoved, r.BytesAdded, r.PartitionsOptimized, r.MinSize, r.P50Size, r.MaxSize, v}
}

// lakeOptimize is CALL lake_optimize('db.t' [, 'partition predicate']).
func (e *Engine) lakeOptimize(ctx *gms.Context, name string, args ...string) (gms.RowIter, error) {
	if len(args) > 1 {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_optimize takes a table and an optional partition predicate, got %d arguments", 1+len(args))
	}
	return e.rewrite(ctx, "lake_optimize", "optimize", name, args, func(t compaction.Table, o compaction.Options) (compaction.Result, error) {
		return compaction.Optimize(ctx, t, o)
	})
}

// lakeZOrder is CALL lake_zorder('db.t', 'col1,col2' [, 'partition predicate']).
func (e *Engine) lakeZOrder(ctx *gms.Context, name, cols string, args ...string) (gms.RowIter, error) {
	if len(args) > 1 {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_zorder takes a table, its columns and an optional partition predicate, got %d arguments", 2+len(args))
	}
	var list []string
	for c := range strings.SplitSeq(cols, ",") {
		if c = strings.Trim(strings.TrimSpace(c), "`"); c != "" {
			list = append(list, c)
		}
	}
	return e.rewrite(ctx, "lake_zorder", "zorder", name, args, func(t compaction.Table, o compaction.Options) (compaction.Result, error) {
		return compaction.ZOrder(ctx, t, list, o)
	})
}

// rewrite runs an OPTIMIZE or ZORDER of table name (args: an optional partition predicate)
// as a job and returns its result row.
func (e *Engine) rewrite(ctx *gms.Context, op, kind, name string, args []string,
	run func(compaction.Table, compaction.Options) (compaction.Result, error)) (gms.RowIter, error) {
	ct, t, err := e.maintained(ctx, op, name)
	if err != nil {
		return nil, err
	}
	o := compaction.Options{}
	if len(args) == 1 && strings.TrimSpace(args[0]) != "" {
		o.Predicate = args[0]
		if o.Where, err = e.partitionPredicate(ctx, ct, op, args[0]); err != nil {
			return nil, err
		}
	}
	o.Job = e.startJob(ctx, kind, t.Name)
	res, err := run(t, o)
	o.Job.End(err)
	if err != nil {
		return nil, maintenanceError(ct, op, err)
	}
	return gms.RowsToRowIter(optimizeRow(res)), nil
}

// lakeVacuum is CALL lake_vacuum('db.t' [, retain_hours [, 'DRY RUN' | 'FULL' | 'FULL DRY RUN']]).
func (e *Engine) lakeVacuum(ctx *gms.Context, name string, args ...string) (gms.RowIter, error) {
	if len(args) > 2 {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_vacuum takes a table, an optional retention in hours and an optional mode, got %d arguments", 1+len(args))
	}
	ct, t, err := e.maintained(ctx, "lake_vacuum", name)
	if err != nil {
		return nil, err
	}
	o := compaction.VacuumOptions{Retention: compaction.DefaultRetention}
	if snap, err := ct.Log.Snapshot(ctx, -1); err == nil {
		if d, ok := txlog.ParseInterval(snap.Metadata.Configuration["delta.deletedFileRetentionDuration"]); ok {
			o.Retention = d
		}
	}
	if len(args) >= 1 && args[0] != "" {
		h, err := strconv.ParseFloat(strings.TrimSpace(args[0]), 64)
		if err != nil {
			return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_vacuum: retention %q is not a number of hours", args[0])
		}
		if h < 0 {
			return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_vacuum: retention must not be negative, got %v hours", h)
		}
		o.Retention = time.Duration(h * float64(time.Hour))
	}
	if len(args) == 2 {
		switch m := strings.Join(strings.Fields(strings.ToUpper(args[1])), " "); m {
		case "DRY RUN":
			o.DryRun = true
		case "FULL":
			o.Full = true
		case "FULL DRY RUN", "DRY RUN FULL":
			o.Full, o.DryRun = true, true
		case "", "LITE":
		default:
			return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_vacuum: unknown mode %q; use 'DRY RUN', 'FULL' or 'FULL DRY RUN'", args[1])
		}
	}
	if o.Retention < compaction.DefaultRetention {
		check, err := ctx.GetSessionVariable(ctx, vacuumRetentionCheck)
		if err != nil {
			return nil, err
		}
		if on, _ := check.(int8); on != 0 {
			return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000",
				"lake_vacuum: a retention of %v hours is below the safe minimum of %v hours: readers and time travel to versions in between would lose files. SET lake_vacuum_retention_check = OFF to allow it",
				o.Retention.Hours(), compaction.DefaultRetention.Hours())
		}
	}
	o.Job = e.startJob(ctx, "vacuum", t.Name)
	res, err := compaction.Vacuum(ctx, t, o)
	o.Job.End(err)
	if err != nil {
		return nil, maintenanceError(ct, "lake_vacuum", err)
	}
	var v any
	if res.Version >= 0 {
		v = res.Version
	}
	return gms.RowsToRowIter(gms.Row{res.FilesDeleted, res.BytesDeleted, o.DryRun, v}), nil
}

// lakeCheckpoint is CALL lake_checkpoint('db.t'): a checkpoint of the latest version now,
// then log cleanup by delta.logRetentionDuration.
func (e *Engine) lakeCheckpoint(ctx *gms.Context, name string) (gms.RowIter, error) {
	ct, t, err := e.maintained(ctx, "lake_checkpoint", name)
	if err != nil {
		return nil, err
	}
	job := e.startJob(ctx, "checkpoint", t.Name)
	v, res, err := ct.Log.CheckpointAndCleanup(ctx, time.Now())
	job.End(err)
	if err != nil {
		return nil, maintenanceError(ct, "lake_checkpoint", err)
	}
	return gms.RowsToRowIter(gms.Row{v, int64(res.CommitsDeleted), int64(res.CheckpointsDeleted), res.EarliestVersion}), nil
}

// tableProperties are the Delta table properties lakehoused honours, each with the check
// its value must pass (CREATE TABLE … COMMENT and lake_set_property). A property such as
// delta.appendOnly that other writers would enforce must not be set on a table whose
// writer ignores it, so unknown delta.* properties are refused.
var tableProperties = map[string]func(string) bool{
	"delta.targetFileSize":               positiveInt,
	"delta.checkpointInterval":           positiveInt,
	"delta.dataSkippingNumIndexedCols":   func(v string) bool { n, err := strconv.Atoi(v); return err == nil && n >= -1 },
	"delta.logRetentionDuration":         isInterval,
	"delta.deletedFileRetentionDuration": isInterval,
	"delta.autoOptimize.autoCompact":     isBool,
	"delta.enableExpiredLogCleanup":      isBool,
}

// propertyDefaults are shown by lake_properties for properties the table does not set.
var propertyDefaults = map[string]string{
	"delta.targetFileSize":               strconv.Itoa(compaction.DefaultTargetSize),
	"delta.checkpointInterval":           "10",
	"delta.dataSkippingNumIndexedCols":   "32",
	"delta.logRetentionDuration":         "interval 30 days",
	"delta.deletedFileRetentionDuration": "interval 1 weeks",
	"delta.autoOptimize.autoCompact":     "true",
	"delta.enableExpiredLogCleanup":      "true",
}

func positiveInt(v string) bool { n, err := strconv.ParseInt(v, 10, 64); return err == nil && n > 0 }
func isInterval(v string) bool  { _, ok := txlog.ParseInterval(v); return ok }
func isBool(v string) bool      { return strings.EqualFold(v, "true") || strings.EqualFold(v, "false") }

// checkProperty validates one property assignment; internal lakehoused.* keys are refused.
func checkProperty(key, val string) error {
	lk := strings.ToLower(key)
	switch {
	case strings.HasPrefix(lk, "delta."):
		check, ok := tableProperties[key]
		if !ok {
			names := make([]string, 0, len(tableProperties))
			for k := range tableProperties {
				names = append(names, k)
			}
			sort.Strings(names)
			return mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "table property %s is not supported; supported: %s", key, strings.Join(names, ", "))
		}
		if !check(val) {
			return mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "table property %s: invalid value %q", key, val)
		}
	case strings.HasPrefix(lk, "lakehoused."):
		return mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "table property %s is managed by lakehoused (use ALTER TABLE)", key)
	case key == "":
		return mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "table property name must not be empty")
	}
	return nil
}

// lakeSetProperty is CALL lake_set_property('db.t', 'key', 'value'); NULL or ” removes
// the property (GMS passes NULL to a procedure as the empty string). It commits a new
// metaData action (operation SET TBLPROPERTIES).
func (e *Engine) lakeSetProperty(ctx *gms.Context, name, key, value string) (gms.RowIter, error) {
	ct, _, err := e.maintained(ctx, "lake_set_property", name)
	if err != nil {
		return nil, err
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	check := value
	if value == "" {
		check = propertyDefaults[key] // removing a property: only its name must be acceptable
	}
	if err := checkProperty(key, check); err != nil && (value != "" || !strings.HasPrefix(strings.ToLower(key), "delta.")) {
		return nil, err
	}
	snap, err := ct.Log.Snapshot(ctx, -1)
	if err != nil {
		return nil, tableError(ct, err)
	}
	meta := snap.Metadata
	conf := make(map[string]string, len(meta.Configuration)+1)
	for k, v := range meta.Configuration {
		conf[k] = v
	}
	var out any
	if value == "" {
		delete(conf, key)
	} else {
		conf[key] = value
		out = value
	}
	meta.Configuration = conf
	blind := false
	actions := []txlog.Action{
		{CommitInfo: &txlog.CommitInfo{Timestamp: time.Now().UnixMilli(), Operation: "SET TBLPROPERTIES", UserName: ctx.Client().User,
			IsBlindAppend: &blind, OperationParameters: map[string]any{"properties": map[string]any{key: out}}}},
		{MetaData: &meta},
	}
	v, err := e.cfg.Committer.Commit(ctx, ct.Log, snap.Version, actions)
	if err != nil {
		return nil, tableError(ct, err)
	}
	if tx := transactionOf(ctx); tx != nil {
		delete(tx.snaps, ct) // later statements read the new properties
	}
	return gms.RowsToRowIter(gms.Row{key, out, v}), nil
}

// lakeProperties is SELECT * FROM lake_properties('db.t'): every property the table sets,
// then the defaults of the Delta properties lakehoused honours that it does not set.
func lakeProperties(ctx *gms.Context, e *Engine, args []any) ([]gms.Row, error) {
	ct, err := resolveTable(ctx, e, args[0])
	if err != nil {
		return nil, err
	}
	snap, err := ct.Log.Snapshot(ctx, -1)
	if err != nil {
		return nil, tableError(ct, err)
	}
	conf := snap.Metadata.Configuration
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var rows []gms.Row
	for _, k := range keys {
		rows = append(rows, gms.Row{k, conf[k], "table"})
	}
	var defaults []string
	for k := range propertyDefaults {
		if _, ok := conf[k]; !ok {
			defaults = append(defaults, k)
		}
	}
	sort.Strings(defaults)
	for _, k := range defaults {
		rows = append(rows, gms.Row{k, propertyDefaults[k], "default"})
	}
	return rows, nil
}

// erOpenAsReadonly is MySQL's ER_OPEN_AS_READONLY (1036, "Table '%s' is read only").
const erOpenAsReadonly = 1036

// partitionPredicate compiles a partition predicate ("region = 'eu' AND day >= '2024-01-01'")
// into a filter over partition values. MySQL evaluates it: the partitions become rows of a
// derived table whose columns are the partition columns, typed as the table types them, so
// the predicate means exactly what it would in a WHERE clause. It may name only partition
// columns; the predicate is checked once up front, so a mistake costs no work.
func (e *Engine) partitionPredicate(ctx *gms.Context, ct *catalog.Table, op, pred string) (func(context.Context, []map[string]string) ([]bool, error), error) {
	snap, err := ct.Log.Snapshot(ctx, -1)
	if err != nil {
		return nil, tableError(ct, err)
	}
	cols := snap.Metadata.PartitionColumns
	name := ct.Entry.Database + "." + ct.Entry.Name
	if len(cols) == 0 {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "%s %s: the table is not partitioned, so a partition predicate has nothing to select", op, name)
	}
	where, err := parsePartitionPredicate(pred, cols)
	if err != nil {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "%s %s: partition predicate %q: %v (it may use only the partition columns: %s)",
			op, name, pred, err, strings.Join(cols, ", "))
	}
	types := make([]string, len(cols))
	for i, c := range cols {
		for _, f := range snap.Schema.Fields {
			if strings.EqualFold(f.Name, c) {
				types[i] = f.Type.Name
			}
		}
	}
	run := func(parts []map[string]string, keep []bool, offset int) error {
		var b strings.Builder
		b.WriteString("SELECT __lake_i FROM (")
		for i, p := range parts {
			if i > 0 {
				b.WriteString(" UNION ALL ")
			}
			fmt.Fprintf(&b, "SELECT %d AS __lake_i", i)
			for k, c := range cols {
				v, ok := "", false
				if p != nil {
					v, ok = p[c]
				}
				fmt.Fprintf(&b, ", %s AS `%s`", partitionLiteral(types[k], v, ok && v != ""), strings.ReplaceAll(c, "`", "``"))
			}
		}
		b.WriteString(") AS __lake_partitions WHERE (")
		b.WriteString(where) // re-printed from the parsed expression, not the caller's text
		b.WriteString(")")
		qctx := gms.NewContext(ctx, gms.WithSession(gms.NewBaseSession()))
		_, iter, _, err := e.sqle.Query(qctx, b.String())
		if err != nil {
			return err
		}
		defer iter.Close(qctx)
		for {
			row, err := iter.Next(qctx)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if i, err := strconv.Atoi(fmt.Sprint(row[0])); err == nil && keep != nil && i >= 0 && i < len(parts) {
				keep[offset+i] = true
			}
		}
	}
	explain := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "%s %s: partition predicate %q: %v (it may use only the partition columns: %s)",
			op, name, pred, err, strings.Join(cols, ", "))
	}
	if err := run([]map[string]string{nil}, nil, 0); err != nil {
		return nil, explain(err)
	}
	return func(_ context.Context, parts []map[string]string) ([]bool, error) {
		keep := make([]bool, len(parts))
		const batch = 256
		for start := 0; start < len(parts); start += batch {
			if err := run(parts[start:min(start+batch, len(parts))], keep, start); err != nil {
				return nil, explain(err)
			}
		}
		return keep, nil
	}, nil
}

// parsePartitionPredicate parses pred as the WHERE clause of a query and returns it printed
// back from the syntax tree, after checking that it is one expression over the partition
// columns only: no subqueries (which could read any table), no qualified or other columns,
// and nothing after it (a ')' cannot close the WHERE it is placed in).
func parsePartitionPredicate(pred string, cols []string) (string, error) {
	stmt, err := sqlparser.Parse("SELECT 1 FROM __lake_partitions WHERE " + pred)
	if err != nil {
		return "", err
	}
	sel, ok := stmt.(*sqlparser.Select)
	if !ok || sel.Where == nil || sel.GroupBy != nil || sel.Having != nil || sel.OrderBy != nil || sel.Limit != nil ||
		sel.Lock != "" || sel.Into != nil || sel.Window != nil {
		return "", errors.New("not a single boolean expression")
	}
	allowed := map[string]bool{}
	for _, c := range cols {
		allowed[strings.ToLower(c)] = true
	}
	err = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		switch x := n.(type) {
		case *sqlparser.Subquery:
			return false, errors.New("subqueries are not allowed")
		case *sqlparser.ColName:
			if !x.Qualifier.IsEmpty() || !allowed[x.Name.Lowered()] {
				return false, fmt.Errorf("column %s is not a partition column", sqlparser.String(x))
			}
		}
		return true, nil
	}, sel.Where.Expr)
	if err != nil {
		return "", err
	}
	return sqlparser.String(sel.Where.Expr), nil
}

// partitionLiteral is the SQL for one partition value of a column of Delta type typ.
func partitionLiteral(typ, v string, present bool) string {
	lit := "NULL"
	if present {
		lit = "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", "''") + "'"
	}
	switch {
	case typ == "long" || typ == "integer" || typ == "short" || typ == "byte":
		return "CAST(" + lit + " AS SIGNED)"
	case typ == "float" || typ == "double":
		return "CAST(" + lit + " AS DOUBLE)"
	case strings.HasPrefix(typ, "decimal"):
		return "CAST(" + lit + " AS " + strings.ToUpper(typ) + ")"
	case typ == "date":
		return "CAST(" + lit + " AS DATE)"
	case typ == "timestamp" || typ == "timestamp_ntz":
		return "CAST(" + lit + " AS DATETIME(6))"
	case typ == "boolean":
		if !present {
			return "CAST(NULL AS SIGNED)"
		}
		return "(" + lit + " = 'true')"
	}
	return "CAST(" + lit + " AS CHAR)"
}
