package sql

import (
	"math"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/expression"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/types"

	"github.com/lakehoused/lakehoused/table"
)

// Pruning on any column. GMS v0.20.0 no longer pushes WHERE clauses into tables (its
// FilteredTable interface is unused by the analyzer); only index lookups reach a table, and
// lakehoused exposes only PRIMARY. So the exec builder looks at each Filter directly above a
// lakehoused table when the plan is built and hands the table a pruning hint made of the
// conjuncts it understands (column op literal, BETWEEN, IN lists of literals). The table
// skips files and row groups whose min/max statistics exclude the hint; the Filter node
// stays and evaluates the exact predicate on every row read. This is what makes Z-ordering
// and sorted loads pay off for queries on non-key columns.
//
// A hint may only ever keep too many files, never too few, so it is built only where the
// comparison MySQL makes and the one the statistics allow agree exactly, and is widened
// where they could differ by rounding:
//   - integer columns take integer literals, DECIMAL columns integer and DECIMAL literals
//     (compared exactly; a DECIMAL literal against an integer column may be rounded first);
//   - DOUBLE columns take numeric literals, rounded to the nearest double and widened by one
//     step each way, bounds inclusive (MySQL compares a DOUBLE with a DECIMAL literal through
//     the double's shortest decimal form); FLOAT columns are not pruned;
//   - DATE and DATETIME columns take time literals and strings, converted at microsecond
//     precision, bounds inclusive (a DATE compares with '2024-01-15 12:00' as a datetime);
//   - string columns (under the byte-wise default collation) take string literals only;
//   - the column must belong to the scanned table by name or alias, so a correlated
//     subquery's conditions on an outer table of the same shape are never taken for its own.

// buildPruned builds a Filter whose child is a lakehoused table scan with the filter's
// pruning hint attached; ok is false when the filter has nothing to offer.
func (lb loadBuilder) buildPruned(ctx *gms.Context, f *plan.Filter, row gms.Row) (gms.RowIter, bool, error) {
	child, ok := withPruning(ctx, f.Child, f.Expression, "")
	if !ok {
		return nil, false, nil
	}
	nf, err := f.WithChildren(child)
	if err != nil {
		return nil, false, nil
	}
	iter, err := lb.e.sqle.Analyzer.ExecBuilder.Build(ctx, nf, row)
	return iter, true, err
}

// withPruning returns n (a table scan, maybe under an alias) with a pruning hint from cond.
// alias is the name the filter's columns use for the table ("" = the table's own name).
func withPruning(ctx *gms.Context, n gms.Node, cond gms.Expression, alias string) (gms.Node, bool) {
	switch x := n.(type) {
	case *plan.TableAlias:
		c, ok := withPruning(ctx, x.Child, cond, x.Name())
		if !ok {
			return nil, false
		}
		nn, err := x.WithChildren(c)
		return nn, err == nil
	case *plan.ResolvedTable:
		tbl := x.Table
		if w, ok := tbl.(gms.TableWrapper); ok { // GMS wraps scans to track their progress
			tbl = w.Underlying()
		}
		t, ok := tbl.(*Table)
		if !ok || t.lookup != nil || t.prune != nil {
			return nil, false
		}
		if alias == "" {
			alias = x.Name()
		}
		f := pruneFilter(ctx, t, alias, cond)
		if f == nil {
			return nil, false
		}
		nt := *t
		nt.prune = f
		rt, err := x.WithTable(&nt) // re-wraps as before
		return rt, err == nil
	}
	return nil, false
}

// pruneFilter turns the conjuncts of cond that compare a column of t (named tableName in
// the query) with literals into a file-pruning filter. Conjuncts it does not understand are
// left out, which only keeps more files.
func pruneFilter(ctx *gms.Context, t *Table, tableName string, cond gms.Expression) *table.Filter {
	var f table.Filter
	for _, c := range expression.SplitConjunction(cond) {
		if cf, ok := columnRange(ctx, t, tableName, c); ok {
			f.Columns = append(f.Columns, cf)
		}
	}
	if len(f.Columns) == 0 {
		return nil
	}
	return &f
}

// colKind is how a prunable column's values compare.
type colKind int

const (
	kindInt     colKind = iota // integers
	kindDecimal                // DECIMAL
	kindDouble                 // DOUBLE
	kindTime                   // DATE, DATETIME, TIMESTAMP
	kindText                   // strings under a byte-wise NO PAD collation
)

type prunable struct {
	name string
	kind colKind
}

// columnRange understands `col op literal` (either way round), `col BETWEEN lit AND lit` and
// `col IN (lit, …)`.
func columnRange(ctx *gms.Context, t *Table, tableName string, e gms.Expression) (table.ColumnFilter, bool) {
	col := func(e gms.Expression) (prunable, bool) { return prunableColumn(t, tableName, e) }
	type cmp struct {
		col prunable
		lit gms.Expression
		op  string
	}
	flip := map[string]string{"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
	comparison := func(l, r gms.Expression, op string) (cmp, bool) {
		if c, ok := col(l); ok {
			return cmp{c, r, op}, true
		}
		if c, ok := col(r); ok {
			return cmp{c, l, flip[op]}, true
		}
		return cmp{}, false
	}
	var c cmp
	var ok bool
	switch x := e.(type) {
	case *expression.Equals:
		c, ok = comparison(x.Left(), x.Right(), "=")
	case *expression.LessThan:
		c, ok = comparison(x.Left(), x.Right(), "<")
	case *expression.LessThanOrEqual:
		c, ok = comparison(x.Left(), x.Right(), "<=")
	case *expression.GreaterThan:
		c, ok = comparison(x.Left(), x.Right(), ">")
	case *expression.GreaterThanOrEqual:
		c, ok = comparison(x.Left(), x.Right(), ">=")
	case *expression.Between:
		p, okc := col(x.Val)
		lo, okl := bound(ctx, p, x.Lower, true, true)
		hi, okh := bound(ctx, p, x.Upper, false, true)
		if !okc || !okl || !okh {
			return table.ColumnFilter{}, false
		}
		return table.ColumnFilter{Column: p.name, Ranges: []table.Range{{Lo: lo, Hi: hi}}}, true
	case *expression.InTuple:
		return inRanges(ctx, col, x.Left(), x.Right())
	case *expression.HashInTuple:
		return inRanges(ctx, col, x.Left(), x.Right())
	}
	if !ok {
		return table.ColumnFilter{}, false
	}
	var rg table.Range
	switch c.op {
	case "=":
		lo, ok1 := bound(ctx, c.col, c.lit, true, true)
		hi, ok2 := bound(ctx, c.col, c.lit, false, true)
		if !ok1 || !ok2 {
			return table.ColumnFilter{}, false
		}
		rg.Lo, rg.Hi = lo, hi
	case "<", "<=":
		if rg.Hi, ok = bound(ctx, c.col, c.lit, false, c.op == "<="); !ok {
			return table.ColumnFilter{}, false
		}
	case ">", ">=":
		if rg.Lo, ok = bound(ctx, c.col, c.lit, true, c.op == ">="); !ok {
			return table.ColumnFilter{}, false
		}
	}
	return table.ColumnFilter{Column: c.col.name, Ranges: []table.Range{rg}}, true
}

func inRanges(ctx *gms.Context, col func(gms.Expression) (prunable, bool), left, right gms.Expression) (table.ColumnFilter, bool) {
	p, ok := col(left)
	tup, tok := right.(expression.Tuple)
	if !ok || !tok {
		return table.ColumnFilter{}, false
	}
	cf := table.ColumnFilter{Column: p.name}
	for _, e := range tup {
		lo, ok1 := bound(ctx, p, e, true, true)
		hi, ok2 := bound(ctx, p, e, false, true)
		if !ok1 || !ok2 {
			return table.ColumnFilter{}, false // a NULL, an expression or a mixed type: keep every file
		}
		cf.Ranges = append(cf.Ranges, table.Range{Lo: lo, Hi: hi})
	}
	return cf, true
}

// bound is the literal e as a lower (lower=true) or upper bound on column p, inclusive as
// asked or wider; ok is false when e is not a literal this column can be pruned with.
func bound(ctx *gms.Context, p prunable, e gms.Expression, lower, inclusive bool) (table.Bound, bool) {
	l, ok := e.(*expression.Literal)
	if !ok || l.Value() == nil {
		return table.Bound{}, false
	}
	v := l.Value()
	switch p.kind {
	case kindInt, kindDecimal:
		switch x := v.(type) {
		case decimal.Decimal:
			if p.kind == kindInt {
				return table.Bound{}, false // MySQL may round it to the column's type first
			}
			fv := filterValue(x)
			return table.Bound{Value: fv, Inclusive: inclusive}, fv != nil
		case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
			fv := filterValue(x)
			return table.Bound{Value: fv, Inclusive: inclusive}, fv != nil
		}
	case kindDouble:
		var f float64
		switch x := v.(type) {
		case int8, int16, int32, int64, uint8, uint16, uint32:
			f = float64(toInt64(x))
		case float64:
			f = x
		case float32:
			f = float64(x)
		case decimal.Decimal:
			f, _ = x.Float64()
		default:
			return table.Bound{}, false
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return table.Bound{}, false
		}
		if lower {
			f = math.Nextafter(f, math.Inf(-1))
		} else {
			f = math.Nextafter(f, math.Inf(1))
		}
		return table.Bound{Value: f, Inclusive: true}, true
	case kindTime:
		switch v.(type) {
		case time.Time, string:
		default:
			return table.Bound{}, false
		}
		cv, _, err := types.DatetimeMaxPrecision.Convert(ctx, v)
		tv, isTime := cv.(time.Time)
		if err != nil || !isTime {
			return table.Bound{}, false
		}
		return table.Bound{Value: tv, Inclusive: true}, true
	case kindText:
		if s, ok := v.(string); ok {
			return table.Bound{Value: s, Inclusive: inclusive}, true
		}
	}
	return table.Bound{}, false
}

// prunableColumn reports the column e reads when it is a plain column of t (by the name or
// alias the query gives t) whose values compare like their Delta statistics.
func prunableColumn(t *Table, tableName string, e gms.Expression) (prunable, bool) {
	gf, ok := e.(*expression.GetField)
	if !ok || !strings.EqualFold(gf.Table(), tableName) {
		return prunable{}, false
	}
	i := t.schema.Schema.IndexOfColName(gf.Name())
	if i < 0 {
		return prunable{}, false
	}
	col := t.schema.Schema[i]
	typ := col.Type
	switch {
	case types.IsYear(typ), types.IsTimespan(typ), types.IsBit(typ), types.IsEnum(typ), types.IsSet(typ):
	case types.IsInteger(typ):
		return prunable{col.Name, kindInt}, true
	case types.IsDecimal(typ):
		return prunable{col.Name, kindDecimal}, true
	case types.IsFloat(typ):
		if typ.Type() == types.Float64.Type() {
			return prunable{col.Name, kindDouble}, true
		}
	case types.IsTime(typ):
		return prunable{col.Name, kindTime}, true
	case types.IsText(typ):
		// Strings only under a byte-wise NO PAD collation (GMS's default utf8mb4_0900_bin,
		// which columns without one of their own get): case-insensitive or PAD SPACE
		// collations make values equal that differ in bytes.
		if st, ok := typ.(gms.TypeWithCollation); ok {
			switch st.Collation() {
			case gms.Collation_Unspecified, gms.Collation_utf8mb4_0900_bin, gms.Collation_binary:
				return prunable{col.Name, kindText}, true
			}
		}
	}
	return prunable{}, false
}
