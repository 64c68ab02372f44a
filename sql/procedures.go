package sql

import (
	"errors"
	"strings"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/lakehoused/lakehoused/catalog"
	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

func procedures(e *Engine) []gms.ExternalStoredProcedureDetails {
	return []gms.ExternalStoredProcedureDetails{
		{Name: "lake_restore", Function: e.lakeRestore, Schema: gms.Schema{
			{Name: "table_version", Type: types.Int64}, {Name: "restored_version", Type: types.Int64},
			{Name: "files_added", Type: types.Int64}, {Name: "files_removed", Type: types.Int64},
		}},
		{Name: "lake_attach", Function: e.lakeAttach, Schema: gms.Schema{
			{Name: "table_name", Type: types.LongText}, {Name: "location", Type: types.LongText}, {Name: "version", Type: types.Int64},
			{Name: "read_only", Type: types.Boolean},
		}},
	}
}

func timeMs(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// lakeRestore commits a new version whose live files are those of an older version.
func (e *Engine) lakeRestore(ctx *gms.Context, tableName string, version int64) (gms.RowIter, error) {
	ct, _, err := e.maintained(ctx, "lake_restore", tableName)
	if err != nil {
		return nil, err
	}
	cur, err := ct.Log.Snapshot(ctx, -1)
	if err != nil {
		return nil, tableError(ct, err)
	}
	old, err := ct.Log.Snapshot(ctx, version)
	if err != nil {
		if errors.Is(err, txlog.ErrVersionNotFound) {
			return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_restore %s: %v", tableName, err)
		}
		return nil, tableError(ct, err)
	}
	now := time.Now().UnixMilli()
	var actions []txlog.Action
	var added, removed int64
	for _, f := range old.Files {
		if _, ok := cur.File(f.Path); ok {
			continue
		}
		if _, err := ct.Store.Stat(ctx, f.Path); err != nil {
			return nil, mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState,
				"lake_restore %s to version %d: data file %s is gone (vacuumed?); that version cannot be restored", tableName, version, f.Path)
		}
		a := *f
		a.DataChange = true
		actions = append(actions, txlog.Action{Add: &a})
		added++
	}
	for _, f := range cur.Files {
		if _, ok := old.File(f.Path); !ok {
			actions = append(actions, txlog.Action{Remove: removeOf(f, now)})
			removed++
		}
	}
	if old.Metadata.SchemaString != cur.Metadata.SchemaString || !equalStrings(old.Metadata.PartitionColumns, cur.Metadata.PartitionColumns) {
		m := old.Metadata
		actions = append(actions, txlog.Action{MetaData: &m})
	}
	blind := false
	actions = append([]txlog.Action{{CommitInfo: &txlog.CommitInfo{Timestamp: now, Operation: "RESTORE", UserName: ctx.Client().User,
		IsBlindAppend: &blind, OperationParameters: map[string]any{"version": version}}}}, actions...)
	v, err := e.cfg.Committer.Commit(ctx, ct.Log, cur.Version, actions)
	if err != nil {
		return nil, tableError(ct, err)
	}
	return gms.RowsToRowIter(gms.Row{v, version, added, removed}), nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// lakeAttach registers a Delta table another engine wrote: CALL lake_attach('db.t', 'url'
// [, 'READ ONLY']). Its log must open and its protocol must be one we can read; the error
// names what is missing otherwise. A table attached READ ONLY takes no writes, DDL or
// maintenance from here: another engine owns it.
func (e *Engine) lakeAttach(ctx *gms.Context, tableName, location string, mode ...string) (gms.RowIter, error) {
	readOnly := false
	switch {
	case len(mode) > 1:
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_attach takes a table, a location and an optional 'READ ONLY', got %d arguments", 2+len(mode))
	case len(mode) == 1 && strings.Join(strings.Fields(strings.ToUpper(mode[0])), " ") == "READ ONLY":
		readOnly = true
	case len(mode) == 1 && strings.TrimSpace(mode[0]) != "" && !strings.EqualFold(strings.TrimSpace(mode[0]), "READ WRITE"):
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_attach: unknown mode %q; use 'READ ONLY' or 'READ WRITE'", mode[0])
	}
	db, name := ctx.GetCurrentDatabase(), tableName
	if i := strings.IndexByte(tableName, '.'); i >= 0 {
		db, name = tableName[:i], tableName[i+1:]
	}
	if db == "" || name == "" {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_attach: name the table as 'db.table'")
	}
	if !strings.Contains(location, "://") && !strings.HasPrefix(location, "/") {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_attach: location %q must be an absolute URL such as file:///data/tables/t", location)
	}
	var version int64
	_, err := e.cfg.Catalog.Attach(ctx, db, name, location, readOnly, func(t *catalog.Table) error {
		snap, err := t.Log.Snapshot(ctx, -1)
		if err != nil {
			if errors.Is(err, txlog.ErrNoTable) || errors.Is(err, storage.ErrNotExist) {
				return mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_attach: %s is not a Delta table (no _delta_log/ with commits found)", location)
			}
			return tableError(t, err)
		}
		if _, err := gmsColumns(ctx, name, snap.Schema, nil); err != nil {
			return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "lake_attach %s: %v", location, err)
		}
		version = snap.Version
		return nil
	})
	if err != nil {
		return nil, catalogError(err)
	}
	return gms.RowsToRowIter(gms.Row{db + "." + name, location, version, readOnly}), nil
}
