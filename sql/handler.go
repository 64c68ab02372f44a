package sql

import (
	"context"
	"regexp"
	"strings"

	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	querypb "github.com/dolthub/vitess/go/vt/proto/query"
)

// handler wraps GMS's protocol handler for two things GMS v0.20.0 gets wrong:
//   - many errors reach clients as the generic 1105 (HY000) although MySQL has a code for
//     them; clients and ORMs branch on codes, so the common ones are mapped to MySQL's;
//   - `AS OF ?` in a prepared statement panics inside GMS and drops the connection; it is
//     refused at prepare time with an error that says what to do instead.
type handler struct {
	mysql.Handler
	e *Engine
}

// codeFor maps GMS's messages (fixed format strings in v0.20.0's sql/errors.go and
// sql/types) to MySQL's error number and SQLSTATE.
var codeFor = []struct {
	match    *regexp.Regexp
	code     int
	sqlState string
}{
	{regexp.MustCompile(`^column ".*" could not be found in any table in scope`), mysql.ERBadFieldError, "42S22"},
	{regexp.MustCompile(`^table ".*" does not have column ".*"`), mysql.ERBadFieldError, "42S22"},
	{regexp.MustCompile(`^string '.*' is too large for column '.*'`), mysql.ERDataTooLong, "22001"},
	{regexp.MustCompile(`^number of values does not match number of columns provided`), mysql.ERWrongValueCountOnRow, "21S01"},
	{regexp.MustCompile(`^table with name .* already exists`), mysql.ERTableExists, "42S01"},
	{regexp.MustCompile(`(?s)^.* out of range for `), mysql.ERWarnDataOutOfRange, "22003"},
	{regexp.MustCompile(`^Incorrect datetime value`), mysql.ERTruncatedWrongValueForField, "22007"},
	{regexp.MustCompile(`^error: '.*' is not a valid value for '.*'`), mysql.ERTruncatedWrongValueForField, "22007"},
	{regexp.MustCompile(`^Column ".*" already exists`), mysql.ERDupFieldName, "42S21"},
	{regexp.MustCompile(`^no database selected`), mysql.ERNoDb, "3D000"},
}

func mapError(err error) error {
	se, ok := err.(*mysql.SQLError)
	if !ok || se.Num != mysql.ERUnknownError {
		return err
	}
	for _, c := range codeFor {
		if c.match.MatchString(se.Message) {
			return mysql.NewSQLError(c.code, c.sqlState, "%s", se.Message)
		}
	}
	return err
}

var asOfParam = regexp.MustCompile(`(?is)\bAS\s+OF\s+(TIMESTAMP\s*\(\s*)?\?`)

func errAsOfParam() error {
	return mysql.NewSQLError(mysql.ERNotSupportedYet, "42000",
		"AS OF ? cannot be a prepared-statement parameter; write the version or timestamp literally (go-sql-driver: interpolateParams=true)")
}

func (h handler) ComQuery(ctx context.Context, c *mysql.Conn, query string, cb mysql.ResultSpoolFn) error {
	cb, err := beforeQuery(query, cb)
	if err != nil {
		return err
	}
	if err := h.e.syncReads(ctx, c.ConnectionID, query); err != nil {
		return err
	}
	err = h.Handler.ComQuery(ctx, c, query, cb)
	if h.needsDatabase(c, query, err) {
		err = h.withScratchDatabase(c, func() error { return h.Handler.ComQuery(ctx, c, query, cb) })
	}
	return fixError(query, err)
}

// needsDatabase: GMS v0.20.0 plans a table function inside the current database, so
// `SELECT * FROM read_csv(…)` fails with "no database selected" on a connection that has not
// chosen one, although a file or a server query needs none. Such a statement failed while it
// was planned (nothing ran), so it is planned again with information_schema as the current
// database for that one statement.
func (h handler) needsDatabase(c *mysql.Conn, query string, err error) bool {
	se, ok := mapError(err).(*mysql.SQLError)
	if !ok || se.Num != mysql.ERNoDb || !sourceFunctionCall.MatchString(query) || h.e == nil {
		return false
	}
	s, ok := h.e.sessions.Load(c.ConnectionID)
	return ok && s.(*Session).GetCurrentDatabase() == ""
}

func (h handler) withScratchDatabase(c *mysql.Conn, run func() error) error {
	v, _ := h.e.sessions.Load(c.ConnectionID)
	s := v.(*Session)
	s.SetCurrentDatabase("information_schema")
	defer func() {
		if s.GetCurrentDatabase() == "information_schema" { // unless the statement chose one
			s.SetCurrentDatabase("")
		}
	}()
	return run()
}

// sourceFunctionCall finds calls of the table functions that need no current database: those
// that read external data, and the lake_* ones, whose argument names the table in full.
var sourceFunctionCall = regexp.MustCompile(`(?i)\b(read_(csv|json|parquet|delta)|mysql_query|postgres_query|lake_(history|files|properties|connections|cluster_nodes)|ml_(predict_table|evaluate|feature_info))\s*\(`)

// beforeQuery refuses what must not reach the engine and wraps the result callback where
// MySQL prints results differently; query starts with the statement about to run (also on
// the multi-statement path, which is called once per statement).
func beforeQuery(query string, cb mysql.ResultSpoolFn) (mysql.ResultSpoolFn, error) {
	if isPrepare(query) && asOfParam.MatchString(query) {
		return nil, errAsOfParam()
	}
	if describeQuery.MatchString(query) {
		cb = unquoteDefaults(cb)
	}
	return cb, nil
}

var describeQuery = regexp.MustCompile(`(?is)^\s*(DESCRIBE|DESC|SHOW\s+(FULL\s+)?(COLUMNS|FIELDS))\s`)

// unquoteDefaults shows string defaults in DESCRIBE / SHOW COLUMNS as MySQL does, bare
// (abc), where the engine prints them as SQL literals ('abc').
func unquoteDefaults(cb mysql.ResultSpoolFn) mysql.ResultSpoolFn {
	return func(res *sqltypes.Result, more bool) error {
		col := -1
		for i, f := range res.Fields {
			if strings.EqualFold(f.Name, "Default") {
				col = i
			}
		}
		if col >= 0 {
			for _, row := range res.Rows {
				if col >= len(row) || row[col].IsNull() {
					continue
				}
				v := row[col].ToString()
				if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
					row[col] = sqltypes.NewVarChar(strings.ReplaceAll(v[1:len(v)-1], "''", "'"))
				}
			}
		}
		return cb(res, more)
	}
}

// fixError gives err the code, state and text a MySQL client expects for query.
func fixError(query string, err error) error {
	err = explainNoDatabase(query, mapError(err))
	se, ok := err.(*mysql.SQLError)
	if !ok || se.Num != mysql.ERNoSuchTable {
		return err
	}
	// DROP TABLE of a missing table is 1051 in MySQL; 1146 elsewhere, with state 42S02.
	if dropTable.MatchString(query) {
		name := strings.TrimPrefix(se.Message, "table not found: ")
		return mysql.NewSQLError(mysql.ERBadTable, "42S02", "Unknown table '%s'", name)
	}
	if se.State == mysql.SSUnknownSQLState {
		return mysql.NewSQLError(se.Num, "42S02", "%s", se.Message)
	}
	return err
}

var dropTable = regexp.MustCompile(`(?is)^\s*DROP\s+(TEMPORARY\s+)?TABLES?\b`)

var tableFunctionCall = regexp.MustCompile(`(?i)\blake_\w+\s*\(`)

// explainNoDatabase: GMS resolves a table function within the current database even when
// its argument names another one, so lake_history('db.t') without USE fails with a bare
// "no database selected". Say what to do.
func explainNoDatabase(query string, err error) error {
	se, ok := err.(*mysql.SQLError)
	if !ok || !strings.Contains(se.Message, "no database selected") || !tableFunctionCall.MatchString(query) {
		return err
	}
	return mysql.NewSQLError(mysql.ERNoDb, "3D000", "no database selected: lake_* table functions need a current database (USE any database first), even when their argument names the table as 'db.table'")
}

func (h handler) ComMultiQuery(ctx context.Context, c *mysql.Conn, query string, cb mysql.ResultSpoolFn) (string, error) {
	cb, err := beforeQuery(query, cb)
	if err != nil {
		return "", err
	}
	if err := h.e.syncReads(ctx, c.ConnectionID, query); err != nil {
		return "", err
	}
	rest, err := h.Handler.ComMultiQuery(ctx, c, query, cb)
	if h.needsDatabase(c, query, err) {
		err = h.withScratchDatabase(c, func() error {
			var rerr error
			rest, rerr = h.Handler.ComMultiQuery(ctx, c, query, cb)
			return rerr
		})
	}
	return rest, fixError(query, err)
}

func (h handler) ComPrepare(ctx context.Context, c *mysql.Conn, query string, p *mysql.PrepareData) ([]*querypb.Field, error) {
	if asOfParam.MatchString(query) {
		return nil, errAsOfParam()
	}
	f, err := h.Handler.ComPrepare(ctx, c, query, p)
	return f, mapError(err)
}

func (h handler) ComStmtExecute(ctx context.Context, c *mysql.Conn, p *mysql.PrepareData, cb func(*sqltypes.Result) error) error {
	if err := h.e.syncReads(ctx, c.ConnectionID, p.PrepareStmt); err != nil {
		return err
	}
	return mapError(h.Handler.ComStmtExecute(ctx, c, p, cb))
}

func isPrepare(q string) bool {
	q = strings.TrimSpace(q)
	return len(q) >= 7 && strings.EqualFold(q[:7], "prepare")
}

// ConnectionClosed forgets the connection's session.
func (h handler) ConnectionClosed(c *mysql.Conn) {
	if h.e != nil {
		h.e.sessions.Delete(c.ConnectionID)
	}
	h.Handler.ConnectionClosed(c)
}
