package sql

import (
	"time"

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

// buildPruned builds a Filter whose child is a lakehoused table scan with the filter's
// pruning hint attached; ok is false when the filter has nothing to offer.
func (lb loadBuilder) buildPruned(ctx *gms.Context, f *plan.Filter, row gms.Row) (gms.RowIter, bool, error) {
	child, ok := withPruning(ctx, f.Child, f.Expression)
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
func withPruning(ctx *gms.Context, n gms.Node, cond gms.Expression) (gms.Node, bool) {
	switch x := n.(type) {
	case *plan.TableAlias:
		c, ok := withPruning(ctx, x.Child, cond)
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
		f := pruneFilter(ctx, t, cond)
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

// pruneFilter turns the conjuncts of cond that compare a column of t with literals into a
// file-pruning filter. Conjuncts it does not understand are left out, which only keeps more
// files. String columns count only under a byte-wise NO PAD collation: others (case- or
// accent-insensitive, or ignoring trailing spaces) make values equal that byte-wise min/max
// statistics would tell apart.
func pruneFilter(ctx *gms.Context, t *Table, cond gms.Expression) *table.Filter {
	var f table.Filter
	for _, c := range expression.SplitConjunction(cond) {
		if cf, ok := columnRange(ctx, t, c); ok {
			f.Columns = append(f.Columns, cf)
		}
	}
	if len(f.Columns) == 0 {
		return nil
	}
	return &f
}

// columnRange understands `col op literal` (either way round), `col BETWEEN lit AND lit` and
// `col IN (lit, …)`.
func columnRange(ctx *gms.Context, t *Table, e gms.Expression) (table.ColumnFilter, bool) {
	// lit is a literal's value as the column compares it. Date and time columns convert
	// other literals ('2024-01-01') with MySQL's own rules, as the comparison will.
	lit := func(e gms.Expression, typ gms.Type) (any, bool) {
		l, ok := e.(*expression.Literal)
		if !ok || l.Value() == nil {
			return nil, false
		}
		v := l.Value()
		if _, isTime := v.(time.Time); types.IsTime(typ) && !isTime {
			cv, _, err := typ.Convert(ctx, v)
			if _, isTime := cv.(time.Time); err != nil || !isTime {
				return nil, false
			}
			v = cv
		}
		fv := filterValue(v)
		return fv, fv != nil
	}
	type cmp struct {
		col   string
		value any
		op    string
	}
	flip := map[string]string{"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
	comparison := func(l, r gms.Expression, op string) (cmp, bool) {
		if c, typ, ok := prunableColumn(t, l); ok {
			if v, ok := lit(r, typ); ok {
				return cmp{c, v, op}, true
			}
		}
		if c, typ, ok := prunableColumn(t, r); ok {
			if v, ok := lit(l, typ); ok {
				return cmp{c, v, flip[op]}, true
			}
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
		col, typ, okc := prunableColumn(t, x.Val)
		lo, okl := lit(x.Lower, typ)
		hi, okh := lit(x.Upper, typ)
		if !okc || !okl || !okh {
			return table.ColumnFilter{}, false
		}
		return table.ColumnFilter{Column: col, Ranges: []table.Range{{Lo: table.Bound{Value: lo, Inclusive: true}, Hi: table.Bound{Value: hi, Inclusive: true}}}}, true
	case *expression.InTuple:
		return inRanges(t, x.Left(), x.Right(), lit)
	case *expression.HashInTuple:
		return inRanges(t, x.Left(), x.Right(), lit)
	}
	if !ok {
		return table.ColumnFilter{}, false
	}
	rg := table.Range{}
	switch c.op {
	case "=":
		rg.Lo, rg.Hi = table.Bound{Value: c.value, Inclusive: true}, table.Bound{Value: c.value, Inclusive: true}
	case "<", "<=":
		rg.Hi = table.Bound{Value: c.value, Inclusive: c.op == "<="}
	case ">", ">=":
		rg.Lo = table.Bound{Value: c.value, Inclusive: c.op == ">="}
	}
	return table.ColumnFilter{Column: c.col, Ranges: []table.Range{rg}}, true
}

func inRanges(t *Table, left, right gms.Expression, lit func(gms.Expression, gms.Type) (any, bool)) (table.ColumnFilter, bool) {
	col, typ, ok := prunableColumn(t, left)
	tup, tok := right.(expression.Tuple)
	if !ok || !tok {
		return table.ColumnFilter{}, false
	}
	cf := table.ColumnFilter{Column: col}
	for _, e := range tup {
		v, ok := lit(e, typ)
		if !ok {
			return table.ColumnFilter{}, false // a NULL or an expression: keep every file
		}
		cf.Ranges = append(cf.Ranges, table.Range{Lo: table.Bound{Value: v, Inclusive: true}, Hi: table.Bound{Value: v, Inclusive: true}})
	}
	return cf, true
}

// prunableColumn reports the column e reads when it is a plain column of t whose type
// compares like its Delta statistics: numbers, decimals, dates and datetimes.
func prunableColumn(t *Table, e gms.Expression) (string, gms.Type, bool) {
	gf, ok := e.(*expression.GetField)
	if !ok {
		return "", nil, false
	}
	i := t.schema.Schema.IndexOfColName(gf.Name())
	if i < 0 {
		return "", nil, false
	}
	col := t.schema.Schema[i]
	switch {
	case types.IsYear(col.Type), types.IsTimespan(col.Type):
	case types.IsInteger(col.Type), types.IsFloat(col.Type), types.IsDecimal(col.Type), types.IsTime(col.Type):
		return col.Name, col.Type, true
	case types.IsText(col.Type):
		// Strings only under a byte-wise NO PAD collation (GMS's default utf8mb4_0900_bin,
		// which columns without one of their own get): case-insensitive or PAD SPACE
		// collations make values equal that differ in bytes.
		if st, ok := col.Type.(gms.TypeWithCollation); ok {
			switch st.Collation() {
			case gms.Collation_Unspecified, gms.Collation_utf8mb4_0900_bin, gms.Collation_binary:
				return col.Name, col.Type, true
			}
		}
	}
	return "", nil, false
}
