package sql

import (
	"context"
	"fmt"
	"strings"
	"sync"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"

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
		s, ok := mlCategory(a.Type(), v)
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
