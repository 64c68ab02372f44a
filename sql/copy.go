package sql

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/expression"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/lakehoused/lakehoused/compaction"
	"github.com/lakehoused/lakehoused/connector"
	"github.com/lakehoused/lakehoused/txlog"
)

// lake_copy and lake_export: Data Factory's Copy activity as procedures. The source is any
// SELECT; when it only reads a source function (read_parquet, mysql_query, …) its Arrow
// batches are used directly, otherwise the engine runs it and its rows are batched.

var copySchema = gms.Schema{
	{Name: "rows_read", Type: types.Int64}, {Name: "rows_written", Type: types.Int64},
	{Name: "bytes", Type: types.Int64}, {Name: "seconds", Type: types.Float64},
}

var exportSchema = gms.Schema{
	{Name: "rows", Type: types.Int64}, {Name: "bytes", Type: types.Int64},
	{Name: "files", Type: types.Int64}, {Name: "url", Type: types.LongText}, {Name: "seconds", Type: types.Float64},
}

func copyProcedures(e *Engine) []gms.ExternalStoredProcedureDetails {
	return []gms.ExternalStoredProcedureDetails{
		{Name: "lake_copy", Function: e.lakeCopy, Schema: copySchema},
		{Name: "lake_export", Function: e.lakeExport, Schema: exportSchema},
	}
}

// propCopyMark prefixes the table properties holding incremental copies' high-water marks.
const propCopyMark = "lakehoused.copy.hwm."

// querySource plans query in the caller's session and returns its result as a source, with
// the result's MySQL columns.
func (e *Engine) querySource(ctx *gms.Context, op, query string) (connector.Source, gms.Schema, error) {
	q := strings.TrimSpace(query)
	if q == "" || !(strings.HasPrefix(strings.ToUpper(q), "SELECT") || strings.HasPrefix(strings.ToUpper(q), "WITH") ||
		strings.HasPrefix(strings.ToUpper(q), "(") || strings.HasPrefix(strings.ToUpper(q), "TABLE") || strings.HasPrefix(strings.ToUpper(q), "VALUES")) {
		return nil, nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "%s: the source must be a SELECT statement, got %q", op, clipText(q, 60))
	}
	if ctx.GetCurrentDatabase() == "" {
		// As for statements (handler.needsDatabase): GMS plans table functions inside the
		// current database, which a copy from a file or a server does not need.
		ctx.SetCurrentDatabase("information_schema")
		defer ctx.SetCurrentDatabase("")
	}
	node, err := e.sqle.AnalyzeQuery(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	if sf, perm, ok := sourceOf(node); ok && isIdentity(perm, len(sf.schema)) && len(node.Schema()) == len(sf.schema) {
		src, err := sf.Source(ctx)
		// The SELECT's names (aliases) with the source's columns.
		sch := make(gms.Schema, len(sf.schema))
		for i, c := range sf.schema {
			cc := *c
			cc.Name = node.Schema()[i].Name
			sch[i] = &cc
		}
		return src, sch, err
	}
	if t, ok := wholeTable(ctx, node); ok {
		src, err := connector.DeltaSnapshot(ctx, t.ct.Store, t.snap)
		if err != nil {
			return nil, nil, tableError(t.ct, err)
		}
		return src, t.schema.Schema, nil
	}
	iter, err := e.sqle.Analyzer.ExecBuilder.Build(ctx, node, nil)
	if err != nil {
		return nil, nil, err
	}
	src, err := newRowSource(ctx, node.Schema(), iter)
	if err != nil {
		iter.Close(ctx)
		return nil, nil, err
	}
	return src, node.Schema(), nil
}

// wholeTable recognises SELECT * FROM t over a lakehoused table that this transaction has not
// changed, whose files can then be streamed as they are.
func wholeTable(ctx *gms.Context, n gms.Node) (*Table, bool) {
	for {
		switch x := n.(type) {
		case *plan.ResolvedTable:
			t, ok := gms.GetUnderlyingTable(x.Table).(*Table) // under GMS's ProcessTable
			if !ok || t.lookup != nil || t.prune != nil {
				return nil, false
			}
			for i, c := range t.projected { // a projection must keep every column, in order
				if len(t.projected) != len(t.schema.Schema) || !strings.EqualFold(c, t.schema.Schema[i].Name) {
					return nil, false
				}
			}
			if tx := transactionOf(ctx); tx != nil {
				if w, ok := tx.writes[t.ct]; ok && !w.empty() {
					return nil, false
				}
			}
			return t, true
		case *plan.TableAlias:
			n = x.Child
		case *plan.Project:
			if len(x.Projections) != len(x.Child.Schema()) {
				return nil, false
			}
			for i, e := range x.Projections {
				gf, ok := e.(*expression.GetField)
				if !ok || gf.Index() != i {
					return nil, false
				}
			}
			n = x.Child
		default:
			return nil, false
		}
	}
}

func isIdentity(perm []int, n int) bool {
	if len(perm) != n {
		return false
	}
	for i, p := range perm {
		if p != i {
			return false
		}
	}
	return true
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// rowSource batches an engine row iterator into Arrow records.
type rowSource struct {
	ctx    *gms.Context
	sch    gms.Schema
	fields []txlog.StructField
	as     *arrow.Schema
	iter   gms.RowIter
	rows   int64
	done   bool
}

func newRowSource(ctx *gms.Context, sch gms.Schema, iter gms.RowIter) (*rowSource, error) {
	fields := make([]txlog.StructField, len(sch))
	for i, c := range sch {
		cc := *c
		cc.Nullable = true
		f, err := deltaField(&cc)
		if err != nil {
			return nil, err
		}
		fields[i] = f
	}
	as, err := connector.ArrowSchemaOf(fields)
	if err != nil {
		return nil, err
	}
	return &rowSource{ctx: ctx, sch: sch, fields: fields, as: as, iter: iter}, nil
}

func (r *rowSource) Fields() []txlog.StructField { return r.fields }
func (r *rowSource) Schema() *arrow.Schema       { return r.as }
func (r *rowSource) Progress() connector.Progress {
	return connector.Progress{Rows: r.rows}
}
func (r *rowSource) Close() error {
	if r.iter == nil {
		return nil
	}
	err := r.iter.Close(r.ctx)
	r.iter = nil
	return err
}

func (r *rowSource) Next(_ context.Context) (arrow.RecordBatch, error) {
	if r.done {
		return nil, io.EOF
	}
	var rows []gms.Row
	for len(rows) < connector.BatchRows {
		row, err := r.iter.Next(r.ctx)
		if errors.Is(err, io.EOF) {
			r.done = true
			break
		}
		if err != nil {
			return nil, err
		}
		out := make(gms.Row, len(row))
		for i, v := range row {
			if v == nil {
				continue
			}
			// Values arrive in the engine's working types (a SUM is a decimal, an
			// expression over ints may be an int64): convert to the column's type.
			cv, _, err := r.sch[i].Type.Convert(r.ctx, v)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", r.sch[i].Name, err)
			}
			out[i] = cv
		}
		rows = append(rows, out)
	}
	if len(rows) == 0 {
		return nil, io.EOF
	}
	r.rows += int64(len(rows))
	return rowsToRecord(rows, r.sch, r.as)
}

// lakeExport is CALL lake_export('SELECT …', 'url', 'parquet'|'csv'|'json').
func (e *Engine) lakeExport(ctx *gms.Context, query, url, format string) (gms.RowIter, error) {
	start := time.Now()
	format = strings.ToLower(strings.TrimSpace(format))
	switch format {
	case "parquet", "csv", "json":
	default:
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_export: format must be 'parquet', 'csv' or 'json', got %q", format)
	}
	src, _, err := e.querySource(ctx, "lake_export", query)
	if err != nil {
		return nil, sourceError("lake_export", err)
	}
	defer src.Close()
	job := e.startJob(ctx, "export", url)
	res, err := connector.Export(ctx, e.cfg.Resolver, &progressSource{Source: src, job: job}, url, connector.ExportOptions{Format: format})
	job.End(err)
	if err != nil {
		return nil, sourceError("lake_export", err)
	}
	where := url
	if len(res.Files) == 1 {
		where = res.Files[0]
	}
	return gms.RowsToRowIter(gms.Row{res.Rows, res.Bytes, int64(len(res.Files)), where, time.Since(start).Seconds()}), nil
}

// progressSource reports a source's progress to a job as batches pass.
type progressSource struct {
	connector.Source
	job *compaction.Job
}

func (p *progressSource) Next(ctx context.Context) (arrow.RecordBatch, error) {
	rec, err := p.Source.Next(ctx)
	if err == nil {
		reportProgress(p.job, p.Source.Progress())
	}
	return rec, err
}

// copyMode is lake_copy's third argument.
type copyMode struct {
	kind string   // append, overwrite, merge
	keys []string // merge keys
}

func parseCopyMode(s string) (copyMode, error) {
	s = strings.TrimSpace(s)
	low := strings.ToLower(s)
	switch {
	case low == "append" || low == "overwrite":
		return copyMode{kind: low}, nil
	case strings.HasPrefix(low, "merge:"):
		var keys []string
		for _, k := range strings.Split(s[len("merge:"):], ",") {
			if k = strings.Trim(strings.TrimSpace(k), "`"); k != "" {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			return copyMode{kind: "merge", keys: keys}, nil
		}
	}
	return copyMode{}, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_copy: mode must be 'append', 'overwrite' or 'merge:key1,key2', got %q", s)
}

// lakeCopy is CALL lake_copy('SELECT …', 'db.target', mode [, 'options']).
func (e *Engine) lakeCopy(ctx *gms.Context, query, target, modeArg string, args ...string) (gms.RowIter, error) {
	start := time.Now()
	if len(args) > 1 {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_copy takes a source SELECT, a target table, a mode and optional options, got %d arguments", 3+len(args))
	}
	mode, err := parseCopyMode(modeArg)
	if err != nil {
		return nil, err
	}
	var incCol string
	if len(args) == 1 {
		k, v, ok := strings.Cut(args[0], "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "incremental_column") {
			return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_copy: unknown option %q; the known option is incremental_column=COLUMN", args[0])
		}
		incCol = strings.Trim(v, "` '\"")
		if mode.kind == "overwrite" {
			return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_copy: an incremental copy cannot overwrite (each run would leave only the newer rows); use 'append' or 'merge:keys'")
		}
	}
	dbName, tblName, err := splitTableName(ctx, target)
	if err != nil {
		return nil, err
	}
	markKey := ""
	if incCol != "" {
		sum := sha256.Sum256([]byte(strings.TrimSpace(query) + "\x00" + strings.ToLower(incCol)))
		markKey = propCopyMark + hex.EncodeToString(sum[:8])
		if t, ok, err := e.lookupTable(ctx, dbName, tblName); err != nil {
			return nil, err
		} else if ok {
			mark, ok := t.snap.Metadata.Configuration[markKey]
			if tx := transactionOf(ctx); tx != nil && tx.writes[t.ct] != nil {
				if m, pending := tx.writes[t.ct].props[markKey]; pending { // an earlier copy in this transaction
					mark, ok = m, true
				}
			}
			if ok {
				if !validMark(mark) {
					return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_copy: the high-water mark %s of %s.%s is damaged (%q); remove it with lake_set_property to copy everything again", markKey, dbName, tblName, mark)
				}
				query = fmt.Sprintf("SELECT * FROM (%s) AS __lake_src WHERE `%s` > %s", query, strings.ReplaceAll(incCol, "`", "``"), mark)
			}
		}
	}
	src, srcSch, err := e.querySource(ctx, "lake_copy", query)
	if err != nil {
		return nil, sourceError("lake_copy", err)
	}
	defer src.Close()
	incIdx := -1
	if incCol != "" {
		if incIdx = srcSch.IndexOfColName(incCol); incIdx < 0 {
			return nil, mysql.NewSQLError(mysql.ERBadFieldError, "42S22", "lake_copy: the incremental column %q is not in the source's columns", incCol)
		}
		if types.IsFloat(srcSch[incIdx].Type) || types.IsJSON(srcSch[incIdx].Type) || types.IsBlobType(srcSch[incIdx].Type) {
			return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_copy: the incremental column %q is %s; use an integer, DECIMAL, date, time or string column", incCol, srcSch[incIdx].Type)
		}
	}
	t, created, err := e.copyTarget(ctx, dbName, tblName, srcSch, mode)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok && created { // a copy that failed leaves no table behind
			if d, err := e.provider.Database(ctx, dbName); err == nil {
				if dd, isOurs := d.(*Database); isOurs {
					_ = dd.DropTable(ctx, tblName)
				}
			}
		}
	}()
	w, err := t.stagedWrites(ctx)
	if err != nil {
		return nil, err
	}
	job := e.startJob(ctx, "copy", dbName+"."+tblName)
	tracker := &markTracker{col: incIdx}
	if incIdx >= 0 {
		tracker.typ = srcSch[incIdx].Type
		tracker.read = readerFor(src.Schema().Field(incIdx).Type, tracker.typ)
	}
	w.begin()
	defer func() {
		if !ok { // an error or a panic: the statement changes nothing
			w.discard()
		}
	}()
	var written int64
	if mode.kind == "overwrite" {
		w.stmt.truncated = true
		w.stmt.ops["truncate"] = true
	}
	// Columns are matched by name, as on the row path.
	perm := make([]int, len(t.schema.Schema))
	for i, c := range t.schema.Schema {
		perm[i] = srcSch.IndexOfColName(c.Name)
	}
	cols, fast := stagingPlan(t, srcSch, src.Schema(), perm)
	if fast && mode.kind != "merge" {
		written, err = e.stageSource(ctx, t, w, &markSource{Source: src, m: tracker, ctx: ctx}, cols, job)
	} else {
		written, err = e.copyRows(ctx, t, w, &markSource{Source: src, m: tracker, ctx: ctx}, srcSch, mode, job)
	}
	if err == nil && tracker.err != nil {
		err = tracker.err
	}
	var lit string
	if err == nil && markKey != "" && tracker.max != nil {
		lit, err = sqlLiteral(tracker.typ, tracker.max)
	}
	if err == nil {
		err = w.complete()
	}
	job.End(err)
	if err != nil {
		return nil, sourceError("lake_copy", err)
	}
	ok = true
	if lit != "" {
		if w.props == nil {
			w.props = map[string]string{}
		}
		w.props[markKey] = lit
	}
	p := src.Progress()
	return gms.RowsToRowIter(gms.Row{p.Rows, written, p.Bytes, time.Since(start).Seconds()}), nil
}

// markTracker keeps the largest value of the incremental column seen.
type markTracker struct {
	col  int
	typ  gms.Type
	read valueReader
	max  any
	err  error
}

// markSource watches batches go by for the high-water mark.
type markSource struct {
	connector.Source
	m   *markTracker
	ctx *gms.Context
}

func (s *markSource) Next(ctx context.Context) (arrow.RecordBatch, error) {
	rec, err := s.Source.Next(ctx)
	if err != nil || s.m.col < 0 {
		return rec, err
	}
	col := rec.Column(s.m.col)
	for i := 0; i < col.Len(); i++ {
		if col.IsNull(i) {
			continue
		}
		v, err := s.m.read(col, i)
		if err != nil {
			s.m.err = err
			return rec, nil
		}
		if s.m.max == nil {
			s.m.max = v
			continue
		}
		if c, err := s.m.typ.Compare(s.ctx, v, s.m.max); err == nil && c > 0 {
			s.m.max = v
		}
	}
	return rec, nil
}

// markNumber and markString are the two forms sqlLiteral writes; a stored mark is checked
// against them before it goes into a query, since any Delta writer can set properties.
var (
	markNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	markString = regexp.MustCompile(`^'([^'\\]|''|\\\\)*'$`)
)

func validMark(s string) bool { return markNumber.MatchString(s) || markString.MatchString(s) }

// sqlLiteral writes v as a SQL literal of type t, for the incremental filter.
func sqlLiteral(t gms.Type, v any) (string, error) {
	if types.IsNumber(t) {
		s, err := storedString(t, v)
		return s, err
	}
	s, err := storedString(t, v)
	if err != nil {
		return "", err
	}
	return sqlString(s), nil
}

// copyRows is lake_copy's row path: values are converted to the target's column types one
// by one, as an INSERT would, and merge replaces rows with the same key.
func (e *Engine) copyRows(ctx *gms.Context, t *Table, w *tableWrites, src connector.Source, srcSch gms.Schema, mode copyMode, job *compaction.Job) (int64, error) {
	tsch := t.schema.Schema
	// Source columns by target column, matched by name.
	from := make([]int, len(tsch))
	for i, c := range tsch {
		from[i] = srcSch.IndexOfColName(c.Name)
		if from[i] < 0 && !c.Nullable && c.Default == nil {
			return 0, mysql.NewSQLError(mysql.ERBadFieldError, "42S22", "lake_copy: the source has no column %q, which table %s needs (columns are matched by name)", c.Name, t.Name())
		}
	}
	if mode.kind == "merge" {
		if len(w.pk) != len(mode.keys) {
			return 0, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_copy: merge keys (%s) must be the primary key of %s", strings.Join(mode.keys, ","), t.Name())
		}
		for i, o := range w.pk {
			if !strings.EqualFold(tsch[o].Name, mode.keys[i]) {
				return 0, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "lake_copy: merge keys (%s) must be the primary key of %s, in key order", strings.Join(mode.keys, ","), t.Name())
			}
		}
	}
	readers := make([]valueReader, len(srcSch))
	for i, c := range srcSch {
		readers[i] = readerFor(src.Schema().Field(i).Type, c.Type)
	}
	ed := &editor{t: t, w: w}
	var n int64
	for {
		rec, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		rows, err := recordRows(rec, readers)
		rec.Release()
		if err != nil {
			return n, err
		}
		for _, r := range rows {
			out := make(gms.Row, len(tsch))
			for i, c := range tsch {
				if from[i] < 0 {
					if c.Default != nil {
						v, err := c.Default.Eval(ctx, nil)
						if err != nil {
							return n, err
						}
						out[i] = v
					}
					continue
				}
				v := r[from[i]]
				if v == nil {
					continue
				}
				cv, _, err := c.Type.Convert(ctx, v)
				if err != nil {
					return n, mysql.NewSQLError(mysql.ERTruncatedWrongValueForField, "HY000", "lake_copy: column %q at source row %d: %v", c.Name, n+1, err)
				}
				out[i] = cv
			}
			if mode.kind == "merge" {
				if old, ok, err := ed.existing(ctx, w.key(out)); err != nil {
					return n, err
				} else if ok {
					if err := ed.Delete(ctx, old); err != nil {
						return n, err
					}
				}
			}
			if err := ed.Insert(ctx, out); err != nil {
				return n, err
			}
			n++
		}
		reportProgress(job, src.Progress())
		job.RowsDone.Store(n)
	}
	return n, nil
}

// splitTableName reads 'db.t' or 't' (current database).
func splitTableName(ctx *gms.Context, s string) (string, string, error) {
	db, name := ctx.GetCurrentDatabase(), strings.TrimSpace(s)
	if i := strings.IndexByte(name, '.'); i >= 0 {
		db, name = name[:i], name[i+1:]
	}
	db, name = strings.Trim(db, "`"), strings.Trim(name, "`")
	if db == "" {
		return "", "", mysql.NewSQLError(mysql.ERNoDb, "3D000", "no database selected; name the target as 'db.table'")
	}
	if name == "" {
		return "", "", mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "expected a table name like 'db.table', got %q", s)
	}
	return db, name, nil
}

// lookupTable finds db.name as this session sees it.
func (e *Engine) lookupTable(ctx *gms.Context, db, name string) (*Table, bool, error) {
	d, err := e.provider.Database(ctx, db)
	if err != nil {
		return nil, false, err
	}
	gt, ok, err := d.GetTableInsensitive(ctx, name)
	if err != nil || !ok {
		return nil, false, err
	}
	t, ok := gt.(*Table)
	if !ok {
		return nil, false, fmt.Errorf("%s.%s is not a lakehoused table", db, name)
	}
	return t, true, nil
}

// copyTarget returns the target table, creating it with the source's columns (and the merge
// keys as its primary key) when it does not exist.
func (e *Engine) copyTarget(ctx *gms.Context, db, name string, srcSch gms.Schema, mode copyMode) (*Table, bool, error) {
	if t, ok, err := e.lookupTable(ctx, db, name); err != nil {
		return nil, false, err
	} else if ok {
		if t.ct.Entry.ReadOnly {
			return nil, false, readOnlyError(t.ct, "lake_copy")
		}
		return t, false, nil
	}
	d, err := e.provider.Database(ctx, db)
	if err != nil {
		return nil, false, err
	}
	cd, ok := d.(*Database)
	if !ok {
		return nil, false, fmt.Errorf("database %s cannot hold lakehoused tables", db)
	}
	cols := make(gms.Schema, len(srcSch))
	var pk []int
	for i, c := range srcSch {
		cc := &gms.Column{Name: c.Name, Type: c.Type, Nullable: true, Source: name}
		for _, k := range mode.keys {
			if strings.EqualFold(k, c.Name) {
				cc.PrimaryKey, cc.Nullable = true, false
			}
		}
		cols[i] = cc
	}
	for _, k := range mode.keys {
		j := cols.IndexOfColName(k)
		if j < 0 {
			return nil, false, mysql.NewSQLError(mysql.ERBadFieldError, "42S22", "lake_copy: merge key %q is not a column of the source", k)
		}
		pk = append(pk, j)
	}
	if err := cd.CreateTable(ctx, name, gms.NewPrimaryKeySchema(cols, pk...), gms.Collation_Default, ""); err != nil {
		return nil, false, err
	}
	t, ok, err := e.lookupTable(ctx, db, name)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		return nil, false, fmt.Errorf("lake_copy: table %s.%s vanished after it was created", db, name)
	}
	return t, true, nil
}
