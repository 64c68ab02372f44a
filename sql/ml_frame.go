package sql

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/shopspring/decimal"

	"github.com/lakehoused/lakehoused/ml"
)

// Turning the result of a SELECT into an ml.Frame, the form the training library takes:
// numeric columns (integers, decimals, doubles, booleans, years; dates and times as seconds
// since the epoch) become float64 with NaN for NULL, everything else a string column.

// mlArgError is a bad argument to one of the ML training procedures or functions: MySQL's
// 1210 (incorrect arguments), with the message saying what to fix.
func mlArgError(format string, args ...any) error {
	return mysql.NewSQLError(mysql.ERWrongArguments, "HY000", format, args...)
}

// mlColumnKind is the kind of ml column a SQL type becomes.
func mlColumnKind(t gms.Type) ml.Kind {
	if types.IsNumber(t) || types.IsTime(t) || t == types.Boolean {
		return ml.Numeric
	}
	return ml.String
}

// mlQueryIter plans query in the caller's transaction and returns its schema and rows.
func (e *Engine) mlQueryIter(ctx *gms.Context, query string) (gms.Schema, gms.RowIter, error) {
	if strings.TrimSpace(query) == "" {
		return nil, nil, mlArgError("the training query is empty; pass a SELECT")
	}
	node, err := e.sqle.AnalyzeQuery(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	if !plan.IsReadOnly(node) {
		return nil, nil, mlArgError("the query must only read (a SELECT); it would change data: %s", query)
	}
	iter, err := e.sqle.Analyzer.ExecBuilder.Build(ctx, node, nil)
	if err != nil {
		return nil, nil, err
	}
	return node.Schema(), iter, nil
}

// mlSchemaOf plans query without running it and returns its columns.
func (e *Engine) mlSchemaOf(ctx *gms.Context, query string) (gms.Schema, error) {
	if strings.TrimSpace(query) == "" {
		return nil, mlArgError("the query is empty; pass a SELECT")
	}
	node, err := e.sqle.AnalyzeQuery(ctx, query)
	if err != nil {
		return nil, err
	}
	return node.Schema(), nil
}

// frameBuilder accumulates rows of a schema into ml columns.
type frameBuilder struct {
	names []string
	types []gms.Type
	kinds []ml.Kind
	num   [][]float64
	str   [][]string
	valid [][]bool
}

func newFrameBuilder(sch gms.Schema) *frameBuilder {
	b := &frameBuilder{}
	for _, c := range sch {
		b.names = append(b.names, c.Name)
		b.types = append(b.types, c.Type)
		b.kinds = append(b.kinds, mlColumnKind(c.Type))
	}
	b.reset()
	return b
}

func (b *frameBuilder) reset() {
	n := len(b.names)
	b.num, b.str, b.valid = make([][]float64, n), make([][]string, n), make([][]bool, n)
}

func (b *frameBuilder) rows() int {
	if len(b.kinds) == 0 {
		return 0
	}
	if b.kinds[0] == ml.Numeric {
		return len(b.num[0])
	}
	return len(b.str[0])
}

// add appends one row; a value that does not fit its column's kind is an error naming it.
func (b *frameBuilder) add(r gms.Row) error {
	for i, v := range r {
		if b.kinds[i] == ml.Numeric {
			f, err := mlNumber(v)
			if err != nil {
				return mlArgError("column %q: %v", b.names[i], err)
			}
			b.num[i] = append(b.num[i], f)
			continue
		}
		s, ok := mlCategory(b.types[i], v)
		b.str[i] = append(b.str[i], s)
		b.valid[i] = append(b.valid[i], ok)
	}
	return nil
}

// addAll appends every row iter yields.
func (b *frameBuilder) addAll(ctx *gms.Context, iter gms.RowIter) error {
	for {
		r, err := iter.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := b.add(r); err != nil {
			return err
		}
	}
}

// column returns column i as an ml.Column (sharing the builder's slices).
func (b *frameBuilder) column(i int) ml.Column {
	if b.kinds[i] == ml.Numeric {
		return ml.NumericColumn(b.names[i], b.num[i])
	}
	return ml.StringColumn(b.names[i], b.str[i], b.valid[i])
}

// mlNumber converts an engine value to float64; NULL is NaN.
func mlNumber(v any) (float64, error) {
	switch x := v.(type) {
	case nil:
		return math.NaN(), nil
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int: // EXTRACT and a few other functions return Go ints
		return float64(x), nil
	case uint:
		return float64(x), nil
	case int8, int16, int32, int64, uint8, uint16, uint32:
		return float64(toInt64(x)), nil
	case uint64:
		return float64(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case decimal.Decimal:
		return x.InexactFloat64(), nil
	case time.Time:
		return float64(x.UnixMicro()) / 1e6, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", x)
		}
		return f, nil
	case []byte:
		return mlNumber(string(x))
	}
	return 0, fmt.Errorf("%v (%T) is not a number", v, v)
}

// mlCategory converts a value of type t to a string category: an ENUM or SET as its
// text (the engine carries their index and bits); ok is false for NULL.
func mlCategory(t gms.Type, v any) (string, bool) {
	if v == nil {
		return "", false
	}
	if s, err := storedString(t, v); err == nil {
		return s, true
	}
	return mlString(v)
}

// mlString converts an engine value to a string category; ok is false for NULL.
func mlString(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case []byte:
		return string(x), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	}
	return fmt.Sprint(plainValue(v)), true
}

// mlFrame runs query and returns its rows as a frame whose label is the column named label
// (none when label is empty, for clustering). The label must exist and hold a value.
func (e *Engine) mlFrame(ctx *gms.Context, query, label string) (*ml.Frame, error) {
	sch, iter, err := e.mlQueryIter(ctx, query)
	if err != nil {
		return nil, err
	}
	defer iter.Close(ctx)
	// Prediction finds features by name, ignoring case as MySQL does: two columns whose
	// names differ only in case (or a second column named like the label) are ambiguous.
	seen := map[string]bool{}
	for _, c := range sch {
		k := strings.ToLower(c.Name)
		if seen[k] {
			return nil, mlArgError("the training query has two columns named %q; give them distinct names with AS", c.Name)
		}
		seen[k] = true
	}
	li := -1
	if label != "" {
		for i, c := range sch {
			if strings.EqualFold(c.Name, label) {
				li = i
			}
		}
		if li < 0 {
			return nil, mlArgError("the training query has no label column %q; its columns are: %s", label, columnNames(sch))
		}
	}
	b := newFrameBuilder(sch)
	if err := b.addAll(ctx, iter); err != nil {
		return nil, err
	}
	if b.rows() == 0 {
		return nil, mlArgError("the training query returned no rows; there is nothing to train on")
	}
	f := &ml.Frame{}
	for i := range sch {
		c := b.column(i)
		if i == li {
			f.Label = &c
			continue
		}
		f.Features = append(f.Features, c)
	}
	if f.Label != nil {
		nulls := 0
		for i := 0; i < f.Label.Len(); i++ {
			if f.Label.IsNull(i) {
				nulls++
			}
		}
		if nulls == f.Label.Len() {
			return nil, mlArgError("label column %q is NULL in all %d rows; there is nothing to learn", f.Label.Name, nulls)
		}
	}
	if len(f.Features) == 0 {
		return nil, mlArgError("the training query has no feature columns; select at least one column besides the label %q", label)
	}
	return f, nil
}

func columnNames(sch gms.Schema) string {
	names := make([]string, len(sch))
	for i, c := range sch {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}
