package sql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/lakehoused/lakehoused/ml"
)

// Prediction and evaluation in SQL: the scalar ml_predict('model', features…), and the table
// functions ml_predict_table('model', 'SELECT …'), ml_evaluate('model', 'SELECT …') and
// ml_feature_info('SELECT …').
//
// A model name means the version its alias `production` points at, else the latest version.
// The version is resolved when the statement is planned (GMS needs a table function's columns
// and a function's type then, and both depend on the model), so a statement runs one version
// from its first row to its last even if ml_deploy moves the alias meanwhile. Loaded models
// are cached by name, version and artifact: versions never change once registered.

// modelCache holds loaded models.
type modelCache struct {
	mu     sync.Mutex
	models map[string]*ml.Model
}

// loadedModel is a model resolved to a version.
type loadedModel struct {
	name    string
	version int64
	model   *ml.Model
}

// mlLoadModel resolves name to its production or latest version and loads that version's
// model file (from the cache when it was loaded before).
func (e *Engine) mlLoadModel(ctx *gms.Context, name string) (*loadedModel, error) {
	if err := e.ensureML(); err != nil {
		return nil, err
	}
	q := sqlString(name)
	rows, err := e.mlQuery(ctx, "SELECT a.version, v.source FROM ml.model_aliases a JOIN ml.model_versions v ON v.name = a.name AND v.version = a.version "+
		"WHERE a.name = "+q+" AND a.alias = 'production'")
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		if rows, err = e.mlQuery(ctx, "SELECT version, source FROM ml.model_versions WHERE name = "+q+" ORDER BY version DESC LIMIT 1"); err != nil {
			return nil, err
		}
	}
	if len(rows) == 0 {
		return nil, mlNotFound("model %q does not exist; train it with ml_train or ml_search (ml.models lists the trained ones)", name)
	}
	version, uri := toInt64(rows[0][0]), fmt.Sprint(rows[0][1])
	key := fmt.Sprintf("%s\x00%d\x00%s", name, version, uri)
	e.models.mu.Lock()
	m := e.models.models[key]
	e.models.mu.Unlock()
	if m == nil {
		b, err := e.getArtifact(ctx, uri)
		if err != nil {
			return nil, fmt.Errorf("ml: loading version %d of model %q from %s: %w", version, name, uri, err)
		}
		if m, err = ml.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("ml: version %d of model %q (%s): %w", version, name, uri, err)
		}
		e.models.mu.Lock()
		if e.models.models == nil {
			e.models.models = map[string]*ml.Model{}
		}
		e.models.models[key] = m
		e.models.mu.Unlock()
	}
	return &loadedModel{name: name, version: version, model: m}, nil
}

// mlPlanContext is a context for reading the tracking tables while a statement is planned,
// where GMS gives function constructors none.
func (e *Engine) mlPlanContext() *gms.Context {
	return e.internalContext(context.Background(), "ml")
}

func describeFeatures(m *ml.Model) string {
	var parts []string
	for _, c := range m.Features() {
		parts = append(parts, fmt.Sprintf("%s (%s)", c.Name, c.Kind))
	}
	return strings.Join(parts, ", ")
}

// checkFeatureType refuses a SQL type that cannot feed a feature of kind k.
func checkFeatureType(lm *loadedModel, i int, t gms.Type, what string) error {
	f := lm.model.Features()[i]
	if t == nil || t == types.Null {
		return nil
	}
	if got := mlColumnKind(t); got != f.Kind {
		return mlArgError("model %q version %d: %s is %s (%s), but feature %d %q is %s; features are: %s",
			lm.name, lm.version, what, t.String(), got, i+1, f.Name, f.Kind, describeFeatures(lm.model))
	}
	return nil
}

// mlFunctions are the scalar functions.
func mlFunctions(e *Engine) []gms.Function {
	return []gms.Function{gms.FunctionN{Name: "ml_predict", Fn: e.newPredictExpr}}
}

// predictExpr is ml_predict('model', feature1, feature2, …).
type predictExpr struct {
	e    *Engine
	args []gms.Expression
	lm   *loadedModel
}

var _ gms.Expression = (*predictExpr)(nil)

func (e *Engine) newPredictExpr(args ...gms.Expression) (gms.Expression, error) {
	if len(args) < 2 {
		return nil, mlArgError("ml_predict takes a model name and the model's features, got %d arguments", len(args))
	}
	p := &predictExpr{e: e, args: args}
	if err := p.load(); err != nil {
		return nil, err
	}
	return p, nil
}

// load resolves the model (its name must be a constant) and checks the features.
func (p *predictExpr) load() error {
	if refersToColumns(p.args[0]) {
		return mlArgError("ml_predict: the model name must be a constant")
	}
	ctx := p.e.mlPlanContext()
	v, err := p.args[0].Eval(ctx, nil)
	if err != nil {
		return mlArgError("ml_predict: the model name must be a constant: %v", err)
	}
	name, ok := v.(string)
	if !ok {
		return mlArgError("ml_predict: the model name must be a string, got %v", v)
	}
	lm, err := p.e.mlLoadModel(ctx, name)
	if err != nil {
		return err
	}
	feats := lm.model.Features()
	if got := len(p.args) - 1; got != len(feats) {
		return mlArgError("model %q version %d takes %d features, got %d; features are: %s", name, lm.version, len(feats), got, describeFeatures(lm.model))
	}
	for i, a := range p.args[1:] {
		if !a.Resolved() {
			continue
		}
		if err := checkFeatureType(lm, i, a.Type(), fmt.Sprintf("argument %d (%s)", i+2, a)); err != nil {
			return err
		}
	}
	p.lm = lm
	return nil
}

func (p *predictExpr) Resolved() bool {
	for _, a := range p.args {
		if !a.Resolved() {
			return false
		}
	}
	return true
}

func (p *predictExpr) String() string {
	parts := make([]string, len(p.args))
	for i, a := range p.args {
		parts[i] = a.String()
	}
	return "ml_predict(" + strings.Join(parts, ", ") + ")"
}

func (p *predictExpr) Type() gms.Type {
	switch p.lm.model.Task {
	case ml.Regression:
		return types.Float64
	case ml.Clustering:
		return types.Int64
	}
	return types.LongText
}

func (p *predictExpr) IsNullable() bool           { return false }
func (p *predictExpr) Children() []gms.Expression { return p.args }
func (p *predictExpr) CollationCoercibility(*gms.Context) (gms.CollationID, byte) {
	return gms.Collation_Default, 4
}

func (p *predictExpr) WithChildren(c ...gms.Expression) (gms.Expression, error) {
	if len(c) != len(p.args) {
		return nil, gms.ErrInvalidChildrenNumber.New(p, len(c), len(p.args))
	}
	np := *p
	np.args = c
	for i, a := range c[1:] {
		if a.Resolved() {
			if err := checkFeatureType(np.lm, i, a.Type(), fmt.Sprintf("argument %d (%s)", i+2, a)); err != nil {
				return nil, err
			}
		}
	}
	return &np, nil
}

func (p *predictExpr) Eval(ctx *gms.Context, row gms.Row) (any, error) {
	feats := p.lm.model.Features()
	f := &ml.Frame{Features: make([]ml.Column, len(feats))}
	for i, a := range p.args[1:] {
		v, err := a.Eval(ctx, row)
		if err != nil {
			return nil, err
		}
		if feats[i].Kind == ml.Numeric {
			x, err := mlNumber(v)
			if err != nil {
				return nil, mlArgError("ml_predict %s: feature %d %q: %v", p.lm.name, i+1, feats[i].Name, err)
			}
			f.Features[i] = ml.NumericColumn(feats[i].Name, []float64{x})
			continue
		}
		s, ok := mlString(v)
		f.Features[i] = ml.StringColumn(feats[i].Name, []string{s}, []bool{ok})
	}
	pred, err := p.lm.model.Predict(f)
	if err != nil {
		return nil, mlArgError("ml_predict %s: %v", p.lm.name, err)
	}
	return predictedValue(p.lm.model, pred, 0), nil
}

// predictedValue is row i's prediction as the engine shows it.
func predictedValue(m *ml.Model, p *ml.Prediction, i int) any {
	switch m.Task {
	case ml.Classification:
		return p.Labels[i]
	case ml.Clustering:
		return int64(p.Values[i])
	}
	return p.Values[i]
}

// modelInput maps a query's columns to a model's features by name.
type modelInput struct {
	sch      gms.Schema
	features []int // query column of each feature
	label    int   // query column of the label, -1 when absent
}

func mapModelInput(lm *loadedModel, sch gms.Schema, needLabel bool) (*modelInput, error) {
	in := &modelInput{sch: sch, label: -1}
	find := func(name string) int {
		for i, c := range sch {
			if strings.EqualFold(c.Name, name) {
				return i
			}
		}
		return -1
	}
	for i, f := range lm.model.Features() {
		j := find(f.Name)
		if j < 0 {
			return nil, mlArgError("model %q version %d needs feature %q, which the query does not have; features are: %s; the query's columns are: %s",
				lm.name, lm.version, f.Name, describeFeatures(lm.model), columnNames(sch))
		}
		if err := checkFeatureType(lm, i, sch[j].Type, fmt.Sprintf("column %q", sch[j].Name)); err != nil {
			return nil, err
		}
		in.features = append(in.features, j)
	}
	if lm.model.Label != "" {
		in.label = find(lm.model.Label)
	}
	if needLabel && lm.model.Task != ml.Clustering && in.label < 0 {
		return nil, mlArgError("evaluating model %q needs its label column %q in the query; the query's columns are: %s", lm.name, lm.model.Label, columnNames(sch))
	}
	return in, nil
}

// frame builds the model's input frame from buffered rows.
func (in *modelInput) frame(lm *loadedModel, rows []gms.Row, withLabel bool) (*ml.Frame, error) {
	cols := make(gms.Schema, 0, len(in.features)+1)
	for _, j := range in.features {
		cols = append(cols, in.sch[j])
	}
	if withLabel && in.label >= 0 {
		cols = append(cols, in.sch[in.label])
	}
	b := newFrameBuilder(cols)
	for k, f := range lm.model.Features() {
		b.kinds[k] = f.Kind
	}
	if withLabel && in.label >= 0 && lm.model.LabelKind != "" {
		b.kinds[len(in.features)] = lm.model.LabelKind
	}
	r := make(gms.Row, len(cols))
	for _, row := range rows {
		for k, j := range in.features {
			r[k] = row[j]
		}
		if withLabel && in.label >= 0 {
			r[len(in.features)] = row[in.label]
		}
		if err := b.add(r); err != nil {
			return nil, err
		}
	}
	f := &ml.Frame{}
	for k := range in.features {
		f.Features = append(f.Features, b.column(k))
	}
	if withLabel && in.label >= 0 {
		c := b.column(len(in.features))
		f.Label = &c
	}
	return f, nil
}

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

// mlTableFunctions are ml_predict_table, ml_evaluate and ml_feature_info.
func mlTableFunctions(e *Engine) []gms.TableFunction {
	return []gms.TableFunction{
		&predictTable{engine: e},
		&tableFunc{engine: e, name: "ml_evaluate", minArg: 2, maxArg: 2, run: mlEvaluate, schema: gms.Schema{
			{Name: "metric", Type: types.LongText}, {Name: "value", Type: types.Float64, Nullable: true},
		}},
		&tableFunc{engine: e, name: "ml_feature_info", minArg: 1, maxArg: 1, run: mlFeatureInfo, schema: gms.Schema{
			{Name: "column_name", Type: types.LongText}, {Name: "kind", Type: types.LongText},
			{Name: "min", Type: types.Float64, Nullable: true}, {Name: "max", Type: types.Float64, Nullable: true},
			{Name: "mean", Type: types.Float64, Nullable: true}, {Name: "stddev", Type: types.Float64, Nullable: true},
			{Name: "null_count", Type: types.Int64}, {Name: "distinct_count", Type: types.Int64},
		}},
	}
}

func stringArgs(name string, args []any) ([]string, error) {
	out := make([]string, len(args))
	for i, a := range args {
		s, ok := a.(string)
		if !ok {
			return nil, mlArgError("%s: argument %d must be a string, got %v", name, i+1, a)
		}
		out[i] = s
	}
	return out, nil
}

// mlEvaluate is ml_evaluate('model', 'SELECT …'): the model's metrics on the query's rows.
func mlEvaluate(ctx *gms.Context, e *Engine, args []any) ([]gms.Row, error) {
	s, err := stringArgs("ml_evaluate", args)
	if err != nil {
		return nil, err
	}
	lm, err := e.mlLoadModel(ctx, s[0])
	if err != nil {
		return nil, err
	}
	sch, iter, err := e.mlQueryIter(ctx, s[1])
	if err != nil {
		return nil, err
	}
	defer iter.Close(ctx)
	in, err := mapModelInput(lm, sch, true)
	if err != nil {
		return nil, err
	}
	var rows []gms.Row
	for {
		r, err := iter.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, mlArgError("ml_evaluate: the query returned no rows")
	}
	fr, err := in.frame(lm, rows, true)
	if err != nil {
		return nil, err
	}
	met, err := ml.Evaluate(lm.model, fr)
	if err != nil {
		return nil, mlArgError("ml_evaluate %s: %v", lm.name, err)
	}
	names := sortedKeys(met)
	out := make([]gms.Row, 0, len(names)+1)
	for _, n := range names {
		out = append(out, gms.Row{n, nullIfNaN(met[n])})
	}
	return append(out, gms.Row{"rows", float64(len(rows))}), nil
}

// mlFeatureInfo is ml_feature_info('SELECT …'): per column its range, mean, standard
// deviation, NULLs and distinct values.
func mlFeatureInfo(ctx *gms.Context, e *Engine, args []any) ([]gms.Row, error) {
	s, err := stringArgs("ml_feature_info", args)
	if err != nil {
		return nil, err
	}
	sch, iter, err := e.mlQueryIter(ctx, s[0])
	if err != nil {
		return nil, err
	}
	defer iter.Close(ctx)
	b := newFrameBuilder(sch)
	for {
		r, err := iter.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := b.add(r); err != nil {
			return nil, err
		}
	}
	f := &ml.Frame{}
	for i := range sch {
		f.Features = append(f.Features, b.column(i))
	}
	info, err := ml.Describe(f)
	if err != nil {
		return nil, mlArgError("ml_feature_info: %v", err)
	}
	out := make([]gms.Row, len(info))
	for i, c := range info {
		out[i] = gms.Row{c.Name, string(c.Kind), nullIfNaN(c.Min), nullIfNaN(c.Max), nullIfNaN(c.Mean), nullIfNaN(c.Stddev), int64(c.Nulls), int64(c.Distinct)}
	}
	return out, nil
}
