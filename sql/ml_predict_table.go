package sql

import (
	"errors"
	"io"
	"runtime"
	"sync"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/lakehoused/lakehoused/ml"
)

// ml_predict_table('model', 'SELECT …'): the query's rows with the model's predictions, read
// on one goroutine and predicted in batches on every core.

// constArgs evaluates a table function's arguments while the statement is planned.
func constArgs(ctx *gms.Context, name string, args []gms.Expression) ([]string, error) {
	out := make([]string, len(args))
	for i, a := range args {
		if refersToColumns(a) {
			return nil, mlArgError("%s: argument %d must be a constant", name, i+1)
		}
		v, err := a.Eval(ctx, nil)
		if err != nil {
			return nil, mlArgError("%s: argument %d must be a constant: %v", name, i+1, err)
		}
		s, ok := v.(string)
		if !ok {
			return nil, mlArgError("%s: argument %d must be a string, got %v", name, i+1, v)
		}
		out[i] = s
	}
	return out, nil
}

// predictTable is ml_predict_table('model', 'SELECT …'): the query's rows with
// predicted_<label> and, for a classifier, probability_<class> per class.
type predictTable struct {
	engine *Engine
	db     gms.Database
	args   []gms.Expression

	query  string
	lm     *loadedModel
	in     *modelInput
	schema gms.Schema
}

var (
	_ gms.TableFunction = (*predictTable)(nil)
	_ gms.ExecSourceRel = (*predictTable)(nil)
	_ gms.TableNode     = (*predictTable)(nil)
)

const predictTableName = "ml_predict_table"

func (f *predictTable) Collation() gms.CollationID { return gms.Collation_Default }
func (f *predictTable) CollationCoercibility(*gms.Context) (gms.CollationID, byte) {
	return gms.Collation_Default, 4
}
func (f *predictTable) UnderlyingTable() gms.Table { return f }
func (f *predictTable) Partitions(*gms.Context) (gms.PartitionIter, error) {
	return gms.PartitionsToPartitionIter(partition{}), nil
}
func (f *predictTable) PartitionRows(ctx *gms.Context, _ gms.Partition) (gms.RowIter, error) {
	return f.RowIter(ctx, nil)
}
func (f *predictTable) Name() string                  { return predictTableName }
func (f *predictTable) String() string                { return predictTableName + "(…)" }
func (f *predictTable) Resolved() bool                { return true }
func (f *predictTable) Schema() gms.Schema            { return f.schema }
func (f *predictTable) Children() []gms.Node          { return nil }
func (f *predictTable) IsReadOnly() bool              { return true }
func (f *predictTable) Database() gms.Database        { return f.db }
func (f *predictTable) Expressions() []gms.Expression { return f.args }
func (f *predictTable) WithChildren(c ...gms.Node) (gms.Node, error) {
	if len(c) != 0 {
		return nil, gms.ErrInvalidChildrenNumber.New(f, len(c), 0)
	}
	return f, nil
}
func (f *predictTable) WithExpressions(e ...gms.Expression) (gms.Node, error) {
	nf := *f
	nf.args = e
	return &nf, nil
}
func (f *predictTable) WithDatabase(db gms.Database) (gms.Node, error) {
	nf := *f
	nf.db = db
	return &nf, nil
}

func (f *predictTable) NewInstance(ctx *gms.Context, db gms.Database, args []gms.Expression) (gms.Node, error) {
	if len(args) != 2 {
		return nil, mlArgError("ml_predict_table takes a model name and a query, got %d arguments", len(args))
	}
	vals, err := constArgs(ctx, predictTableName, args)
	if err != nil {
		return nil, err
	}
	lm, err := f.engine.mlLoadModel(ctx, vals[0])
	if err != nil {
		return nil, err
	}
	sch, err := f.engine.mlSchemaOf(ctx, vals[1])
	if err != nil {
		return nil, err
	}
	in, err := mapModelInput(lm, sch, false)
	if err != nil {
		return nil, err
	}
	nf := *f
	nf.db, nf.args, nf.query, nf.lm, nf.in = db, args, vals[1], lm, in
	for _, c := range sch {
		nc := *c
		nc.Source, nc.Nullable = predictTableName, true
		nf.schema = append(nf.schema, &nc)
	}
	target := "cluster"
	if lm.model.Label != "" {
		target = lm.model.Label
	}
	var t gms.Type = types.Float64
	switch lm.model.Task {
	case ml.Classification:
		t = types.LongText
	case ml.Clustering:
		t = types.Int64
	}
	nf.schema = append(nf.schema, &gms.Column{Name: "predicted_" + target, Type: t, Source: predictTableName})
	if lm.model.Task == ml.Classification {
		for _, c := range lm.model.Classes {
			nf.schema = append(nf.schema, &gms.Column{Name: "probability_" + c, Type: types.Float64, Source: predictTableName})
		}
	}
	return &nf, nil
}

// predictBatch is how many rows are predicted at once: enough to amortise the frame and the
// model's blocked tree walk, few enough to keep the first rows quick.
const predictBatch = 4096

// RowIter reads the query's rows on one goroutine and predicts batches on every core, in
// order: the engine hands rows over one at a time, so a single goroutine reading, converting
// and predicting would leave the other cores idle while the model is the slow part (a
// 100-tree forest), and the model idle while rows are decoded (a linear model).
func (f *predictTable) RowIter(ctx *gms.Context, _ gms.Row) (gms.RowIter, error) {
	sch, iter, err := f.engine.mlQueryIter(ctx, f.query)
	if err != nil {
		return nil, err
	}
	if len(sch) != len(f.in.sch) {
		iter.Close(ctx)
		return nil, mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState,
			"ml_predict_table: the query's columns changed since the statement was planned; run it again")
	}
	workers := runtime.GOMAXPROCS(0)
	it := &predictIter{f: f, src: iter, queue: make(chan chan predicted, workers+1), stop: make(chan struct{}), readerDone: make(chan struct{})}
	go it.read(ctx, workers)
	return it, nil
}

// predicted is one batch's output rows, or the error that ended the scan.
type predicted struct {
	rows []gms.Row
	err  error
}

type predictIter struct {
	f          *predictTable
	src        gms.RowIter
	queue      chan chan predicted // batches in source order, each filled by a worker
	stop       chan struct{}
	readerDone chan struct{}
	closed     bool
	out        []gms.Row
	err        error
}

// read reads batches of source rows and hands each to a worker, queueing its result slot
// in order.
func (it *predictIter) read(ctx *gms.Context, workers int) {
	defer close(it.readerDone)
	defer close(it.queue)
	type job struct {
		rows []gms.Row
		out  chan predicted
	}
	work := make(chan job, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range work {
				rows, err := it.predict(j.rows)
				j.out <- predicted{rows, err}
			}
		})
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	for {
		var rows []gms.Row
		var err error
		for len(rows) < predictBatch {
			var r gms.Row
			if r, err = it.src.Next(ctx); err != nil {
				break
			}
			rows = append(rows, r)
		}
		eof := errors.Is(err, io.EOF)
		if len(rows) == 0 && eof {
			return
		}
		out := make(chan predicted, 1)
		if err != nil && !eof {
			out <- predicted{err: err}
		}
		select {
		case it.queue <- out:
		case <-it.stop:
			return
		}
		if err != nil && !eof {
			return
		}
		select {
		case work <- job{rows, out}:
		case <-it.stop:
			return
		}
		if eof {
			return
		}
	}
}

// predict turns one batch of source rows into output rows.
func (it *predictIter) predict(batch []gms.Row) ([]gms.Row, error) {
	m := it.f.lm.model
	fr, err := it.f.in.frame(it.f.lm, batch, false)
	if err != nil {
		return nil, err
	}
	pred, err := m.Predict(fr)
	if err != nil {
		return nil, mlArgError("ml_predict_table %s: %v", it.f.lm.name, err)
	}
	k := len(m.Classes)
	width := len(it.f.schema)
	vals := make([]any, width*len(batch)) // one allocation for the batch's rows
	out := make([]gms.Row, len(batch))
	for i, src := range batch {
		r := gms.Row(vals[i*width : (i+1)*width : (i+1)*width])
		n := copy(r, src)
		r[n] = predictedValue(m, pred, i)
		if m.Task == ml.Classification {
			for c := 0; c < k; c++ {
				r[n+1+c] = pred.Proba[i*k+c]
			}
		}
		out[i] = r
	}
	return out, nil
}

func (it *predictIter) Next(ctx *gms.Context) (gms.Row, error) {
	for len(it.out) == 0 {
		if it.err != nil {
			return nil, it.err
		}
		slot, ok := <-it.queue
		if !ok {
			it.err = io.EOF
			continue
		}
		p := <-slot
		if p.err != nil {
			it.err = p.err
			continue
		}
		it.out = p.rows
	}
	r := it.out[0]
	it.out = it.out[1:]
	return r, nil
}

// Close stops the reader (it may be waiting on the source) before closing the source, which
// only the reader reads.
func (it *predictIter) Close(ctx *gms.Context) error {
	if it.closed {
		return nil
	}
	it.closed = true
	close(it.stop)
	<-it.readerDone
	return it.src.Close(ctx)
}
