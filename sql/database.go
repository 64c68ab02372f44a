package sql

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/google/uuid"

	"github.com/lakehoused/lakehoused/catalog"
	"github.com/lakehoused/lakehoused/txlog"
)

// Database is one database of the catalog.
type Database struct {
	engine *Engine
	name   string
}

var (
	_ gms.Database                = (*Database)(nil)
	_ gms.TableCreator            = (*Database)(nil)
	_ gms.TableDropper            = (*Database)(nil)
	_ gms.TableRenamer            = (*Database)(nil)
	_ gms.VersionedDatabase       = (*Database)(nil)
	_ gms.ViewDatabase            = (*Database)(nil)
	_ gms.TriggerDatabase         = (*Database)(nil)
	_ gms.StoredProcedureDatabase = (*Database)(nil)
	_ gms.CollatedDatabase        = (*Database)(nil)
)

func (d *Database) Name() string { return d.name }

func (d *Database) catalog() *catalog.Catalog { return d.engine.cfg.Catalog }

func (d *Database) GetTableNames(*gms.Context) ([]string, error) {
	ts, err := d.catalog().Tables(d.name)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Entry.Name
	}
	if d.name == mlDatabase {
		names = append(names, latestMetricsName)
	}
	return names, nil
}

// GetTableInsensitive returns the table at the version the transaction pinned.
func (d *Database) GetTableInsensitive(ctx *gms.Context, name string) (gms.Table, bool, error) {
	if d.name == mlDatabase && strings.EqualFold(name, latestMetricsName) {
		return latestMetrics{e: d.engine}, true, nil
	}
	ct, err := d.catalog().Table(d.name, name)
	if errors.Is(err, catalog.ErrTableNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	snap, err := transactionOf(ctx).snapshot(ctx, ct)
	if err != nil {
		return nil, false, err
	}
	t, err := newTable(ctx, d, ct, snap, false)
	if err != nil {
		return nil, false, err
	}
	return t, true, nil
}

// GetTableInsensitiveAsOf serves AS OF: a string is a version number, a time is "the latest
// version committed at or before".
func (d *Database) GetTableInsensitiveAsOf(ctx *gms.Context, name string, asOf any) (gms.Table, bool, error) {
	ct, err := d.catalog().Table(d.name, name)
	if errors.Is(err, catalog.ErrTableNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var snap *txlog.Snapshot
	switch v := asOf.(type) {
	case string:
		n, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if perr != nil || n < 0 {
			return nil, false, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "AS OF %q: expected a table version number (0, 1, …) or TIMESTAMP('YYYY-MM-DD hh:mm:ss')", v)
		}
		snap, err = ct.Log.Snapshot(ctx, n)
	case time.Time:
		snap, err = ct.Log.SnapshotAt(ctx, v)
	default:
		return nil, false, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "AS OF %v: expected a version number or a timestamp", asOf)
	}
	if err != nil {
		if errors.Is(err, txlog.ErrVersionNotFound) || errors.Is(err, txlog.ErrBeforeFirstCommit) {
			return nil, false, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "table %s.%s AS OF %v: %v", d.name, name, asOf, err)
		}
		return nil, false, tableError(ct, err)
	}
	t, err := newTable(ctx, d, ct, snap, true)
	if err != nil {
		return nil, false, err
	}
	return t, true, nil
}

func (d *Database) GetTableNamesAsOf(ctx *gms.Context, _ any) ([]string, error) {
	return d.GetTableNames(ctx)
}

// CreateTable writes version 0 of a new Delta table: protocol (1,2) and the schema.
func (d *Database) CreateTable(ctx *gms.Context, name string, sch gms.PrimaryKeySchema, _ gms.CollationID, comment string) error {
	fields := make([]txlog.StructField, 0, len(sch.Schema))
	for _, c := range sch.Schema {
		if c.AutoIncrement {
			return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "column %q: AUTO_INCREMENT is not supported by lakehoused yet", c.Name)
		}
		f, err := deltaField(c)
		if err != nil {
			return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "table %s %v", name, err)
		}
		fields = append(fields, f)
	}
	conf := map[string]string{}
	var pk []string
	for _, o := range sch.PkOrdinals {
		pk = append(pk, sch.Schema[o].Name)
	}
	if len(pk) > 0 {
		conf[propPrimaryKey] = strings.Join(pk, ",")
	}
	partCols, props, rest, err := parseTableComment(comment, sch.Schema)
	if err != nil {
		return err
	}
	for k, v := range props {
		conf[k] = v
	}
	if rest != "" {
		conf[propComment] = rest
	}
	created := time.Now().UnixMilli()
	schema := &txlog.Schema{Type: "struct", Fields: fields}
	meta := &txlog.Metadata{
		ID: uuid.NewString(), Name: name, Format: txlog.Format{Provider: "parquet", Options: map[string]string{}},
		SchemaString: schema.String(), PartitionColumns: partCols, CreatedTime: &created, Configuration: conf,
	}
	_, err = d.catalog().CreateTable(ctx, d.name, name, func(t *catalog.Table) error {
		actions := []txlog.Action{
			{CommitInfo: &txlog.CommitInfo{Timestamp: created, Operation: "CREATE TABLE", UserName: ctx.Client().User,
				OperationParameters: map[string]any{"isManaged": "true", "partitionBy": partitionByJSON(partCols)}}},
			{Protocol: &txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
			{MetaData: meta},
		}
		_, err := d.engine.cfg.Committer.Commit(ctx, t.Log, -1, actions)
		return err
	})
	return catalogError(err)
}

func partitionByJSON(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = strconv.Quote(c)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// parseTableComment reads the table options lakehoused keeps in COMMENT, separated by ';':
// partition_by=a,b and delta.<property>=<value>. Anything else stays the table's comment.
func parseTableComment(comment string, sch gms.Schema) ([]string, map[string]string, string, error) {
	var cols, rest []string
	props := map[string]string{}
	for _, part := range strings.Split(comment, ";") {
		p := strings.TrimSpace(part)
		key, val, _ := strings.Cut(p, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch {
		case strings.EqualFold(key, "partition_by"):
			for _, c := range strings.Split(val, ",") {
				c = strings.TrimSpace(c)
				i := sch.IndexOfColName(c)
				if i < 0 {
					return nil, nil, "", mysql.NewSQLError(mysql.ERBadFieldError, "42S22", "partition_by names unknown column %q", c)
				}
				cols = append(cols, sch[i].Name)
			}
		case strings.HasPrefix(strings.ToLower(key), "delta."):
			if err := checkProperty(key, val); err != nil {
				return nil, nil, "", err
			}
			props[key] = val
		case p != "":
			rest = append(rest, p)
		}
	}
	return cols, props, strings.Join(rest, "; "), nil
}

func (d *Database) DropTable(ctx *gms.Context, name string) error {
	return catalogError(d.catalog().DropTable(ctx, d.name, name))
}

func (d *Database) RenameTable(ctx *gms.Context, oldName, newName string) error {
	return catalogError(d.catalog().RenameTable(ctx, d.name, oldName, d.name, newName))
}

// catalogError maps catalog errors to the engine's error kinds (and so MySQL codes).
func catalogError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, catalog.ErrTableExists):
		return gms.ErrTableAlreadyExists.New(strings.TrimPrefix(err.Error(), catalog.ErrTableExists.Error()+": "))
	case errors.Is(err, catalog.ErrTableNotFound):
		return gms.ErrTableNotFound.New(strings.TrimPrefix(err.Error(), catalog.ErrTableNotFound.Error()+": "))
	case errors.Is(err, catalog.ErrDatabaseNotFound):
		return gms.ErrDatabaseNotFound.New(strings.TrimPrefix(err.Error(), catalog.ErrDatabaseNotFound.Error()+": "))
	case errors.Is(err, catalog.ErrDatabaseExists):
		return gms.ErrDatabaseExists.New(strings.TrimPrefix(err.Error(), catalog.ErrDatabaseExists.Error()+": "))
	}
	return err
}

// Views, triggers and stored procedures are not stored yet; the privileged-database wrapper
// still needs the interfaces, so they answer "none".
func (d *Database) CreateView(*gms.Context, string, string, string) error {
	return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "CREATE VIEW is not supported by lakehoused yet")
}
func (d *Database) DropView(_ *gms.Context, name string) error {
	return gms.ErrViewDoesNotExist.New(d.name, name)
}
func (d *Database) GetViewDefinition(*gms.Context, string) (gms.ViewDefinition, bool, error) {
	return gms.ViewDefinition{}, false, nil
}
func (d *Database) AllViews(*gms.Context) ([]gms.ViewDefinition, error) { return nil, nil }
func (d *Database) GetTriggers(*gms.Context) ([]gms.TriggerDefinition, error) {
	return nil, nil
}
func (d *Database) CreateTrigger(*gms.Context, gms.TriggerDefinition) error {
	return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "triggers are not supported by lakehoused")
}
func (d *Database) DropTrigger(_ *gms.Context, name string) error {
	return fmt.Errorf("trigger %s does not exist", name)
}
func (d *Database) GetStoredProcedure(*gms.Context, string) (gms.StoredProcedureDetails, bool, error) {
	return gms.StoredProcedureDetails{}, false, nil
}
func (d *Database) GetStoredProcedures(*gms.Context) ([]gms.StoredProcedureDetails, error) {
	return nil, nil
}
func (d *Database) SaveStoredProcedure(*gms.Context, gms.StoredProcedureDetails) error {
	return mysql.NewSQLError(mysql.ERNotSupportedYet, mysql.SSUnknownSQLState, "CREATE PROCEDURE is not supported by lakehoused yet")
}
func (d *Database) DropStoredProcedure(_ *gms.Context, name string) error {
	return fmt.Errorf("procedure %s does not exist", name)
}
func (d *Database) GetCollation(*gms.Context) gms.CollationID        { return gms.Collation_Default }
func (d *Database) SetCollation(*gms.Context, gms.CollationID) error { return nil }
