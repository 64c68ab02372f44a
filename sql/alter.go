package sql

import (
	"errors"
	"fmt"
	"strings"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// ALTER TABLE is Delta schema evolution: each change commits a new metaData action.
//
// ADD COLUMN needs no rewrite: files written before simply lack the column and read as NULL.
// With a default, existing rows get it, so the files are rewritten with the column filled
// in, in the same commit as the new schema.
// DROP and RENAME COLUMN do rewrite every file. Without Delta column mapping (a reader
// feature that would lock out older readers) the physical column name in Parquet is the
// logical one, so a dropped column left in old files would reappear if a column of the same
// name were added later, and a renamed one would read as NULL.

func (t *Table) AddColumn(ctx *gms.Context, column *gms.Column, order *gms.ColumnOrder) error {
	if t.schema.Schema.IndexOfColName(column.Name) >= 0 {
		return gms.ErrColumnExists.New(column.Name)
	}
	if !column.Nullable && column.Default == nil {
		return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState,
			"ADD COLUMN %s NOT NULL needs a DEFAULT: existing rows must get a value", column.Name)
	}
	f, err := deltaField(column)
	if err != nil {
		return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "%v", err)
	}
	// Files written before read the new column as NULL, so NOT NULL cannot hold for them
	// without a rewrite; GMS follows AddColumn with an update pass that fills defaults.
	f.Nullable = true
	fields := append([]txlog.StructField(nil), t.snap.Schema.Fields...)
	pos := len(fields)
	if order != nil {
		if order.First {
			pos = 0
		} else if order.AfterColumn != "" {
			for i, g := range fields {
				if strings.EqualFold(g.Name, order.AfterColumn) {
					pos = i + 1
				}
			}
		}
	}
	fields = append(fields[:pos], append([]txlog.StructField{f}, fields[pos:]...)...)
	// Existing rows get the default, in the same commit as the new schema: the files are
	// rewritten with the column filled in. Without a default they read it as NULL.
	var fill map[string]gms.Expression
	if column.Default != nil && len(t.snap.Files) > 0 {
		if err := checkAddedDefault(column); err != nil {
			return err
		}
		fill = map[string]gms.Expression{column.Name: column.Default}
	}
	if err := t.commitSchema(ctx, "ADD COLUMNS", fields, nil, fill); err != nil {
		return err
	}
	// GMS follows ADD COLUMN with a pass that sets the default on every row of this very
	// table object: it must see the new column (the rows already hold the value, so the
	// pass changes nothing; see editor.Update).
	return t.reload(ctx)
}

// checkAddedDefault refuses defaults that existing rows cannot be given: ones that refer
// to other columns. Others are evaluated for each row (UUID() differs per row; NOW() is the
// statement's time).
func checkAddedDefault(column *gms.Column) error {
	if refersToColumns(column.Default) {
		return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState,
			"ADD COLUMN %s: a default that refers to other columns cannot be added to a table with rows yet", column.Name)
	}
	return nil
}

// reload points t at the table's latest version.
func (t *Table) reload(ctx *gms.Context) error {
	snap, err := t.ct.Log.Snapshot(ctx, -1)
	if err != nil {
		return tableError(t.ct, err)
	}
	fresh, err := newTable(ctx, t.db, t.ct, snap, false)
	if err != nil {
		return err
	}
	*t = *fresh
	return nil
}

func (t *Table) DropColumn(ctx *gms.Context, name string) error {
	i := t.schema.Schema.IndexOfColName(name)
	if i < 0 {
		return gms.ErrTableColumnNotFound.New(t.Name(), name)
	}
	for _, p := range t.snap.Metadata.PartitionColumns {
		if strings.EqualFold(p, name) {
			return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "column %s partitions table %s and cannot be dropped", name, t.Name())
		}
	}
	for _, k := range t.pkCols {
		if strings.EqualFold(k, name) {
			return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "column %s is part of the primary key of %s and cannot be dropped", name, t.Name())
		}
	}
	fields := append([]txlog.StructField(nil), t.snap.Schema.Fields[:i]...)
	fields = append(fields, t.snap.Schema.Fields[i+1:]...)
	return t.commitSchema(ctx, "DROP COLUMNS", fields, nil, nil)
}

// ModifyColumn serves RENAME COLUMN and CHANGE/MODIFY COLUMN when the stored type stays the same.
func (t *Table) ModifyColumn(ctx *gms.Context, name string, column *gms.Column, order *gms.ColumnOrder) error {
	i := t.schema.Schema.IndexOfColName(name)
	if i < 0 {
		return gms.ErrTableColumnNotFound.New(t.Name(), name)
	}
	if order != nil && (order.First || order.AfterColumn != "") {
		return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "moving column %s is not supported yet", name)
	}
	f, err := deltaField(column)
	if err != nil {
		return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "%v", err)
	}
	old := t.snap.Schema.Fields[i]
	if old.Type.Name != f.Type.Name || old.Type.Name == "" {
		return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState,
			"changing column %s from %s to %s is not supported yet (stored types differ)", name, t.schema.Schema[i].Type, column.Type)
	}
	for _, p := range t.snap.Metadata.PartitionColumns {
		if strings.EqualFold(p, name) && !strings.EqualFold(name, column.Name) {
			return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "partition column %s cannot be renamed", name)
		}
	}
	if !column.Nullable && old.Nullable {
		return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "making column %s NOT NULL is not supported yet", name)
	}
	fields := append([]txlog.StructField(nil), t.snap.Schema.Fields...)
	fields[i] = f
	var renames map[string]string
	if !strings.EqualFold(name, column.Name) {
		renames = map[string]string{strings.ToLower(name): column.Name}
	}
	return t.commitSchema(ctx, "CHANGE COLUMN", fields, renames, nil)
}

// commitSchema commits the new schema. Renamed or dropped columns force a rewrite of every
// file into the new schema (see the file comment); the key property follows renames.
//
// fill gives values for columns that are new in fields (ADD COLUMN with a default); it too
// forces the rewrite.
func (t *Table) commitSchema(ctx *gms.Context, op string, fields []txlog.StructField, renames map[string]string, fill map[string]gms.Expression) error {
	if t.ct.Entry.ReadOnly {
		return readOnlyError(t.ct, op)
	}
	newSchema := &txlog.Schema{Type: "struct", Fields: fields}
	meta := t.snap.Metadata
	meta.SchemaString = newSchema.String()
	conf := map[string]string{}
	for k, v := range meta.Configuration {
		conf[k] = v
	}
	if len(renames) > 0 && conf[propPrimaryKey] != "" {
		keys := strings.Split(conf[propPrimaryKey], ",")
		for i, k := range keys {
			if n, ok := renames[strings.ToLower(k)]; ok {
				keys[i] = n
			}
		}
		conf[propPrimaryKey] = strings.Join(keys, ",")
	}
	meta.Configuration = conf
	now := time.Now().UnixMilli()
	actions := []txlog.Action{{MetaData: &meta}}

	rewrite := op == "DROP COLUMNS" || len(renames) > 0 || len(fill) > 0
	var written []*txlog.Add
	if rewrite && len(t.snap.Files) > 0 {
		adds, removes, err := t.rewriteInto(ctx, newSchema, renames, fill)
		if err != nil {
			return err
		}
		written = adds
		for _, a := range adds {
			a.DataChange = len(fill) > 0 // new values, not just a new layout
			actions = append(actions, txlog.Action{Add: a})
		}
		for _, r := range removes {
			r.DataChange = false
			actions = append(actions, txlog.Action{Remove: r})
		}
	}
	blind := false
	actions = append([]txlog.Action{{CommitInfo: &txlog.CommitInfo{Timestamp: now, Operation: op, UserName: ctx.Client().User, IsBlindAppend: &blind}}}, actions...)
	if _, err := t.db.engine.cfg.Committer.Commit(ctx, t.ct.Log, t.snap.Version, actions); err != nil {
		if !errors.Is(err, storage.ErrOutcomeUnknown) {
			deleteFiles(t.ct.Store, written) // the rewrite is not in the log: its files must go
		}
		return tableError(t.ct, err)
	}
	// The transaction must not keep reading the old schema.
	if tx := transactionOf(ctx); tx != nil {
		delete(tx.snaps, t.ct)
	}
	return nil
}

// rewriteInto copies every live file into newSchema, renaming columns on the way.
func (t *Table) rewriteInto(ctx *gms.Context, newSchema *txlog.Schema, renames map[string]string, fill map[string]gms.Expression) ([]*txlog.Add, []*txlog.Remove, error) {
	as, err := table.ArrowSchema(newSchema)
	if err != nil {
		return nil, nil, err
	}
	wr, err := table.NewWriter(t.ct.Store, newSchema, t.snap.Metadata.PartitionColumns, writerOptions(t.snap))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now().UnixMilli()
	var removes []*txlog.Remove
	for _, f := range t.snap.Files {
		rows, err := t.db.engine.readFileRows(ctx, t, f)
		if err != nil {
			_ = wr.Abort(ctx)
			return nil, nil, err
		}
		out := make([]gms.Row, len(rows))
		for i, r := range rows {
			nr := make(gms.Row, len(newSchema.Fields))
			for j, nf := range newSchema.Fields {
				src := nf.Name
				for o, n := range renames {
					if n == nf.Name {
						src = o
					}
				}
				if k := t.schema.Schema.IndexOfColName(src); k >= 0 {
					nr[j] = r[k]
				} else if d, ok := fill[nf.Name]; ok {
					v, err := d.Eval(ctx, nil)
					if err != nil {
						_ = wr.Abort(ctx)
						return nil, nil, fmt.Errorf("column %s: default: %w", nf.Name, err)
					}
					nr[j] = v
				}
			}
			out[i] = nr
		}
		nsch, err := gmsColumns(ctx, t.Name(), newSchema, nil)
		if err != nil {
			_ = wr.Abort(ctx)
			return nil, nil, err
		}
		rec, err := rowsToRecord(out, nsch.Schema, as)
		if err == nil {
			err = wr.Write(ctx, rec)
			rec.Release()
		}
		if err != nil {
			_ = wr.Abort(ctx)
			return nil, nil, err
		}
		removes = append(removes, removeOf(f, now))
	}
	adds, err := wr.Close(ctx)
	if err != nil {
		_ = wr.Abort(ctx)
		return nil, nil, err
	}
	return adds, removes, nil
}
