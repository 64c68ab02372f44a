package sql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/lakehoused/lakehoused/compaction"
	"github.com/lakehoused/lakehoused/connector"
	"github.com/lakehoused/lakehoused/txlog"
)

// Table functions over external data: read_csv, read_json, read_parquet, read_delta,
// mysql_query, postgres_query. Unlike lake_history, their columns depend on their
// arguments, so the arguments must be constants: NewInstance evaluates them while the
// statement is planned, opens the source to learn its columns, and keeps it open for the
// statement's first scan (a query against a database server is not run twice).

type sourceFunc struct {
	engine *Engine
	name   string
	minArg int
	maxArg int
	open   func(ctx *gms.Context, e *Engine, args []any) (connector.Source, error)

	db     gms.Database
	args   []gms.Expression
	vals   []any
	fields []txlog.StructField
	schema gms.Schema
	arrow  *arrow.Schema // the batches' schema when the statement was planned
	primed *primedSource
}

var (
	_ gms.TableFunction = (*sourceFunc)(nil)
	_ gms.ExecSourceRel = (*sourceFunc)(nil)
	_ gms.TableNode     = (*sourceFunc)(nil)
)

func (f *sourceFunc) Collation() gms.CollationID { return gms.Collation_Default }
func (f *sourceFunc) CollationCoercibility(*gms.Context) (gms.CollationID, byte) {
	return gms.Collation_Default, 4
}
func (f *sourceFunc) UnderlyingTable() gms.Table { return f }
func (f *sourceFunc) Partitions(*gms.Context) (gms.PartitionIter, error) {
	return gms.PartitionsToPartitionIter(partition{}), nil
}
func (f *sourceFunc) PartitionRows(ctx *gms.Context, _ gms.Partition) (gms.RowIter, error) {
	return f.RowIter(ctx, nil)
}
func (f *sourceFunc) Name() string                  { return f.name }
func (f *sourceFunc) String() string                { return f.name + "(…)" }
func (f *sourceFunc) Resolved() bool                { return true }
func (f *sourceFunc) Schema() gms.Schema            { return f.schema }
func (f *sourceFunc) Children() []gms.Node          { return nil }
func (f *sourceFunc) IsReadOnly() bool              { return true }
func (f *sourceFunc) Database() gms.Database        { return f.db }
func (f *sourceFunc) Expressions() []gms.Expression { return f.args }
func (f *sourceFunc) WithChildren(c ...gms.Node) (gms.Node, error) {
	if len(c) != 0 {
		return nil, gms.ErrInvalidChildrenNumber.New(f, len(c), 0)
	}
	return f, nil
}
func (f *sourceFunc) WithExpressions(e ...gms.Expression) (gms.Node, error) {
	nf := *f
	nf.args = e
	return &nf, nil
}
func (f *sourceFunc) WithDatabase(db gms.Database) (gms.Node, error) {
	nf := *f
	nf.db = db
	return &nf, nil
}

func (f *sourceFunc) NewInstance(ctx *gms.Context, db gms.Database, args []gms.Expression) (gms.Node, error) {
	if len(args) < f.minArg || len(args) > f.maxArg {
		return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "%s takes %d to %d arguments, got %d", f.name, f.minArg, f.maxArg, len(args))
	}
	nf := *f
	nf.db, nf.args = db, args
	nf.vals = make([]any, len(args))
	for i, a := range args {
		if refersToColumns(a) {
			return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "%s: argument %d must be a constant", f.name, i+1)
		}
		v, err := a.Eval(ctx, nil)
		if err != nil {
			return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "%s: argument %d must be a constant: %v", f.name, i+1, err)
		}
		nf.vals[i] = v
	}
	src, err := f.open(ctx, f.engine, nf.vals)
	if err != nil {
		return nil, sourceError(f.name, err)
	}
	nf.fields = src.Fields()
	nf.schema = make(gms.Schema, len(nf.fields))
	for i, fl := range nf.fields {
		t, err := gmsType(fl)
		if err != nil {
			src.Close()
			return nil, sourceError(f.name, fmt.Errorf("column %q: %w", fl.Name, err))
		}
		nf.schema[i] = &gms.Column{Name: fl.Name, Type: t, Nullable: true, Source: f.name}
	}
	nf.arrow = src.Schema()
	nf.primed = newPrimed(src)
	return &nf, nil
}

// Source opens the function's source for a scan: the one opened while planning, if the
// statement has not used it yet, else a new one.
func (f *sourceFunc) Source(ctx *gms.Context) (connector.Source, error) {
	if src := f.primed.take(); src != nil {
		return src, nil
	}
	src, err := f.open(ctx, f.engine, f.vals)
	if err != nil {
		return nil, sourceError(f.name, err)
	}
	// Opened again (the statement runs its scan more than once, or planning was long
	// ago): a glob may match other files now, a server's table may have changed.
	if !sameTypes(src.Schema(), f.arrow) {
		src.Close()
		return nil, mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState,
			"%s: the source's columns changed since the statement was planned (now %s, planned %s); run the statement again", f.name, src.Schema(), f.arrow)
	}
	return src, nil
}

func sameTypes(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.Fields() {
		if !arrow.TypeEqual(a.Field(i).Type, b.Field(i).Type) {
			return false
		}
	}
	return true
}

func (f *sourceFunc) RowIter(ctx *gms.Context, _ gms.Row) (gms.RowIter, error) {
	src, err := f.Source(ctx)
	if err != nil {
		return nil, err
	}
	it := &sourceIter{f: f, src: src, job: f.engine.jobs.Start(f.name, "", ctx.Session.ID())}
	it.readers = make([]valueReader, len(f.schema))
	for i, c := range f.schema {
		it.readers[i] = readerFor(src.Schema().Field(i).Type, c.Type)
	}
	return it, nil
}

// primedSource hands the source opened while planning to the first scan. A statement that
// is planned but never run (EXPLAIN, a failed analysis) leaves it behind; it is closed
// after a while so that a connection to a database server is not held.
type primedSource struct {
	mu    sync.Mutex
	src   connector.Source
	timer *time.Timer
}

const primedTimeout = 30 * time.Second

func newPrimed(src connector.Source) *primedSource {
	p := &primedSource{src: src}
	p.timer = time.AfterFunc(primedTimeout, func() {
		if s := p.take(); s != nil {
			s.Close()
		}
	})
	return p
}

func (p *primedSource) take() connector.Source {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	src := p.src
	p.src = nil
	if src != nil {
		p.timer.Stop()
	}
	return src
}

// sourceIter turns a source's batches into GMS rows.
type sourceIter struct {
	f       *sourceFunc
	src     connector.Source
	readers []valueReader
	job     *compaction.Job
	rec     arrow.RecordBatch
	i       int
	err     error
}

func (it *sourceIter) Next(ctx *gms.Context) (gms.Row, error) {
	for it.rec == nil || it.i >= int(it.rec.NumRows()) {
		if it.rec != nil {
			it.rec.Release()
			it.rec = nil
		}
		rec, err := it.src.Next(ctx)
		if err != nil {
			if err != io.EOF {
				err = sourceError(it.f.name, err)
				it.err = err
			}
			return nil, err
		}
		it.rec, it.i = rec, 0
		reportProgress(it.job, it.src.Progress())
	}
	row := make(gms.Row, len(it.readers))
	for c, rd := range it.readers {
		v, err := rd(it.rec.Column(c), it.i)
		if err != nil {
			return nil, sourceError(it.f.name, fmt.Errorf("column %q: %w", it.f.schema[c].Name, err))
		}
		row[c] = v
	}
	it.i++
	return row, nil
}

func (it *sourceIter) Close(*gms.Context) error {
	if it.rec != nil {
		it.rec.Release()
		it.rec = nil
	}
	it.job.End(it.err)
	return it.src.Close()
}

// reportProgress copies a source's progress into its job.
func reportProgress(job *compaction.Job, p connector.Progress) {
	if job == nil {
		return
	}
	job.RowsDone.Store(p.Rows)
	job.BytesDone.Store(p.Bytes)
	job.BytesTotal.Store(p.TotalBytes)
}

// sourceError gives errors from external data a MySQL error code: refusals by the server's
// settings are 1290 (as for secure_file_priv), the rest say which function failed.
func sourceError(fn string, err error) error {
	var se *mysql.SQLError
	if errors.As(err, &se) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, connector.ErrNotAllowed) {
		return mysql.NewSQLError(mysql.EROptionPreventsStatement, "HY000", "%s: %v", fn, err)
	}
	return mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState, "%s: %v", fn, err)
}

// stringArg reads argument i as a string (a URL, a query, options).
func stringArg(fn string, args []any, i int, what string) (string, error) {
	if i >= len(args) {
		return "", nil
	}
	switch v := args[i].(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case nil:
		return "", mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "%s: %s must not be NULL", fn, what)
	}
	return "", mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "%s: %s must be a string, got %v", fn, what, args[i])
}

func sourceFunctions(e *Engine) []gms.TableFunction {
	return []gms.TableFunction{
		&sourceFunc{engine: e, name: "read_delta", minArg: 1, maxArg: 2, open: openDelta},
	}
}

func openDelta(ctx *gms.Context, e *Engine, args []any) (connector.Source, error) {
	u, err := stringArg("read_delta", args, 0, "the table's URL")
	if err != nil {
		return nil, err
	}
	version := int64(-1)
	if len(args) > 1 {
		v, ok := intKey(args[1])
		if !ok || v < 0 {
			return nil, mysql.NewSQLError(mysql.ERWrongArguments, "HY000", "read_delta: the version must be a non-negative integer, got %v", args[1])
		}
		version = v
	}
	return connector.OpenDelta(ctx, e.cfg.Resolver, strings.TrimSpace(u), version)
}
