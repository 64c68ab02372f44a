package sql

import (
	"regexp"
	"strings"
	"sync"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/lakehoused/lakehoused/connector"
)

// File and database sources, and named connections.

func fileSourceFunctions(e *Engine) []gms.TableFunction {
	return []gms.TableFunction{
		&sourceFunc{engine: e, name: "read_csv", minArg: 1, maxArg: 2, open: openCSV},
		&sourceFunc{engine: e, name: "read_json", minArg: 1, maxArg: 2, open: openJSON},
		&sourceFunc{engine: e, name: "read_parquet", minArg: 1, maxArg: 1, open: openParquet},
		&sourceFunc{engine: e, name: "mysql_query", minArg: 2, maxArg: 2, open: openDB("mysql_query", "mysql")},
		&sourceFunc{engine: e, name: "postgres_query", minArg: 2, maxArg: 2, open: openDB("postgres_query", "postgres")},
	}
}

// expand resolves a URL argument into the objects it names.
func expand(ctx *gms.Context, e *Engine, fn string, args []any) ([]connector.Location, error) {
	u, err := stringArg(fn, args, 0, "the URL")
	if err != nil {
		return nil, err
	}
	return e.cfg.Resolver.Expand(ctx, strings.TrimSpace(u))
}

func openCSV(ctx *gms.Context, e *Engine, args []any) (connector.Source, error) {
	locs, err := expand(ctx, e, "read_csv", args)
	if err != nil {
		return nil, err
	}
	optText, err := stringArg("read_csv", args, 1, "the options")
	if err != nil {
		return nil, err
	}
	opts, err := connector.ParseOptions(optText, connector.CSVOptionKeys...)
	if err != nil {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "read_csv: %v", err)
	}
	return connector.OpenCSV(ctx, e.cfg.Resolver, locs, opts)
}

func openJSON(ctx *gms.Context, e *Engine, args []any) (connector.Source, error) {
	locs, err := expand(ctx, e, "read_json", args)
	if err != nil {
		return nil, err
	}
	optText, err := stringArg("read_json", args, 1, "the options")
	if err != nil {
		return nil, err
	}
	opts, err := connector.ParseOptions(optText, "sample_rows", "compression")
	if err != nil {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "read_json: %v", err)
	}
	sample, err := opts.Int("sample_rows", 20480)
	if err != nil {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "read_json: %v", err)
	}
	return connector.OpenJSON(ctx, e.cfg.Resolver, locs, connector.JSONOptions{SampleRows: int(sample), Compression: opts["compression"]})
}

func openParquet(ctx *gms.Context, e *Engine, args []any) (connector.Source, error) {
	locs, err := expand(ctx, e, "read_parquet", args)
	if err != nil {
		return nil, err
	}
	return connector.OpenParquet(ctx, e.cfg.Resolver, locs)
}

// openDB runs a query on a MySQL or PostgreSQL server named by URL or by connection name.
func openDB(fn, kind string) func(ctx *gms.Context, e *Engine, args []any) (connector.Source, error) {
	return func(ctx *gms.Context, e *Engine, args []any) (connector.Source, error) {
		target, err := stringArg(fn, args, 0, "the server URL or connection name")
		if err != nil {
			return nil, err
		}
		query, err := stringArg(fn, args, 1, "the query")
		if err != nil {
			return nil, err
		}
		target = strings.TrimSpace(target)
		rawURL := target
		if !strings.Contains(target, "://") {
			conns, err := e.connections()
			if err != nil {
				return nil, err
			}
			k, u, err := conns.Resolve(target)
			if err != nil {
				return nil, err
			}
			if k != kind {
				return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "%s: connection %s is a %s connection; use %s_query", fn, target, k, k)
			}
			rawURL = u
		}
		if kind == "mysql" {
			return connector.QueryMySQL(ctx, rawURL, query, connector.DBOptions{})
		}
		return connector.QueryPostgres(ctx, rawURL, query, connector.DBOptions{})
	}
}

// connections opens the node's named connections on first use.
func (e *Engine) connections() (*connector.Connections, error) {
	e.connsOnce.Do(func() {
		if e.cfg.DataDir == "" {
			e.connsErr = mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState, "named connections need a data directory; this engine has none")
			return
		}
		e.conns, e.connsErr = connector.OpenConnections(e.cfg.DataDir)
	})
	return e.conns, e.connsErr
}

type connState struct {
	connsOnce sync.Once
	conns     *connector.Connections
	connsErr  error
}

func connectionProcedures(e *Engine) []gms.ExternalStoredProcedureDetails {
	ok := gms.Schema{{Name: "status", Type: types.LongText}}
	return []gms.ExternalStoredProcedureDetails{
		{Name: "lake_connection_create", Schema: ok, Function: func(ctx *gms.Context, name, kind, url string) (gms.RowIter, error) {
			conns, err := e.connections()
			if err != nil {
				return nil, err
			}
			if err := conns.Create(name, kind, url); err != nil {
				return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_connection_create: %v", err)
			}
			return gms.RowsToRowIter(gms.Row{"created " + name}), nil
		}},
		{Name: "lake_connection_drop", Schema: ok, Function: func(ctx *gms.Context, name string) (gms.RowIter, error) {
			conns, err := e.connections()
			if err != nil {
				return nil, err
			}
			if err := conns.Drop(name); err != nil {
				return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_connection_drop: %v", err)
			}
			return gms.RowsToRowIter(gms.Row{"dropped " + name}), nil
		}},
	}
}

func lakeConnections(_ *gms.Context, e *Engine, _ []any) ([]gms.Row, error) {
	conns, err := e.connections()
	if err != nil {
		return nil, err
	}
	var rows []gms.Row
	for _, c := range conns.List() {
		rows = append(rows, gms.Row{c.Name, c.Kind, c.URL, c.Created})
	}
	return rows, nil
}

// urlPassword matches the password of a URL in a statement's text.
var urlPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'"]*:)[^@\s'"]+@`)

// passwordParam matches password=… in a URL's query.
var passwordParam = regexp.MustCompile(`(?i)([?&]password=)[^&\s'"]+`)

// redactQuery hides passwords of URLs in statement text shown by SHOW PROCESSLIST.
func redactQuery(q string) string {
	if !strings.Contains(q, "://") {
		return q
	}
	return passwordParam.ReplaceAllString(urlPassword.ReplaceAllString(q, "${1}***@"), "${1}***")
}
