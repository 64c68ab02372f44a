package sql

import (
	"errors"
	"io"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"

	"github.com/lakehoused/lakehoused/ml"
)

// ml_evaluate('model', 'SELECT …') and ml_feature_info('SELECT …'): a model's metrics on
// labelled rows, and a summary of any query's columns.

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
	if err := b.addAll(ctx, iter); err != nil {
		return nil, err
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
