package sql

import (
	"github.com/apache/arrow-go/v18/arrow"
	"strings"

	gms "github.com/dolthub/go-mysql-server/sql"

	"github.com/lakehoused/lakehoused/table"
)

// The only index exposed is PRIMARY, over the declared key. It makes the key visible to
// metadata queries (SHOW INDEX, information_schema.statistics, JDBC getPrimaryKeys) and turns
// key predicates into file pruning with Delta min/max stats. Lookups cost no I/O: pruning uses
// the stats already in the snapshot.
type primaryIndex struct {
	t *Table
}

var _ gms.OrderedIndex = primaryIndex{}

// Order is "none": a plain scan of the table is not in key order, so GMS must keep its
// sorts. (Lookups are returned sorted; see lookupRows.)
func (i primaryIndex) Order() gms.IndexOrder { return gms.IndexOrderNone }
func (i primaryIndex) Reversible() bool      { return false }

func (i primaryIndex) ID() string       { return "PRIMARY" }
func (i primaryIndex) Database() string { return i.t.db.name }
func (i primaryIndex) Table() string    { return i.t.Name() }
func (i primaryIndex) Expressions() []string {
	out := make([]string, len(i.t.pkCols))
	for j, c := range i.t.pkCols {
		out[j] = strings.ToLower(i.t.Name()) + "." + strings.ToLower(c)
	}
	return out
}
func (i primaryIndex) IsUnique() bool                             { return true }
func (i primaryIndex) IsSpatial() bool                            { return false }
func (i primaryIndex) IsFullText() bool                           { return false }
func (i primaryIndex) IsVector() bool                             { return false }
func (i primaryIndex) Comment() string                            { return "" }
func (i primaryIndex) IndexType() string                          { return "BTREE" }
func (i primaryIndex) IsGenerated() bool                          { return false }
func (i primaryIndex) PrefixLengths() []uint16                    { return nil }
func (i primaryIndex) CanSupport(*gms.Context, ...gms.Range) bool { return true }
func (i primaryIndex) CanSupportOrderBy(gms.Expression) bool      { return false }
func (i primaryIndex) ColumnExpressionTypes() []gms.ColumnExpressionType {
	out := make([]gms.ColumnExpressionType, len(i.t.pkCols))
	for j, c := range i.t.pkCols {
		col := i.t.schema.Schema[i.t.schema.Schema.IndexOfColName(c)]
		out[j] = gms.ColumnExpressionType{Expression: strings.ToLower(i.t.Name()) + "." + strings.ToLower(c), Type: col.Type}
	}
	return out
}

func (t *Table) GetIndexes(*gms.Context) ([]gms.Index, error) {
	if len(t.pkCols) == 0 {
		return nil, nil
	}
	return []gms.Index{primaryIndex{t}}, nil
}

// IndexedAccess is called while planning too: it must not read anything.
func (t *Table) IndexedAccess(_ *gms.Context, lookup gms.IndexLookup) gms.IndexedTable {
	nt := *t
	nt.lookup = &lookup
	return &indexedTable{&nt}
}

// PreciseMatch is false: pruning is by file, so the filter above must still run.
func (t *Table) PreciseMatch() bool { return false }

type indexedTable struct{ *Table }

func (t *indexedTable) LookupPartitions(ctx *gms.Context, lookup gms.IndexLookup) (gms.PartitionIter, error) {
	nt := *t.Table
	nt.lookup = &lookup
	t.Table = &nt
	return t.Partitions(ctx)
}

// lookupFilter turns the engine's ranges into a file-pruning filter. Several ranges are a
// disjunction; only the first key column's bounds of each range are used, which is always
// safe (it can only keep more files).
func lookupFilter(sch gms.Schema, l *gms.IndexLookup) *table.Filter {
	rc, ok := l.Ranges.(gms.MySQLRangeCollection)
	if !ok || len(rc) == 0 || l.Index == nil {
		return nil
	}
	exprs := l.Index.Expressions()
	if len(exprs) == 0 {
		return nil
	}
	col := exprs[0][strings.LastIndex(exprs[0], ".")+1:]
	cf := table.ColumnFilter{Column: col}
	for _, r := range rc {
		if len(r) == 0 {
			return nil
		}
		ce := r[0]
		var rg table.Range
		if gms.MySQLRangeCutIsBinding(ce.LowerBound) {
			v := gms.GetMySQLRangeCutKey(ce.LowerBound)
			_, above := ce.LowerBound.(gms.Above)
			rg.Lo = table.Bound{Value: filterValue(v), Inclusive: !above}
			if rg.Lo.Value == nil {
				return nil
			}
		}
		if gms.MySQLRangeCutIsBinding(ce.UpperBound) {
			v := gms.GetMySQLRangeCutKey(ce.UpperBound)
			_, above := ce.UpperBound.(gms.Above)
			rg.Hi = table.Bound{Value: filterValue(v), Inclusive: above}
			if rg.Hi.Value == nil {
				return nil
			}
		}
		cf.Ranges = append(cf.Ranges, rg)
	}
	return &table.Filter{Columns: []table.ColumnFilter{cf}}
}

// keyRangeCheck returns a test of whether row i of a scanned batch can satisfy the lookup's
// ranges on the first key column (nil when it cannot tell). Only that column is converted,
// so a point lookup does not convert every row of the file it reads.
func (t *Table) keyRangeCheck(ctx *gms.Context, as *arrow.Schema) func(arrow.RecordBatch, int) (bool, error) {
	rc, ok := t.lookup.Ranges.(gms.MySQLRangeCollection)
	if !ok || len(rc) == 0 || len(t.pkCols) == 0 {
		return nil
	}
	col := -1
	for i, f := range as.Fields() {
		if strings.EqualFold(f.Name, t.pkCols[0]) {
			col = i
		}
	}
	if col < 0 {
		return nil
	}
	typ := t.schema.Schema[t.schema.PkOrdinals[0]].Type
	read := readerFor(as.Field(col).Type, typ)
	return func(rec arrow.RecordBatch, i int) (bool, error) {
		v, err := read(rec.Column(col), i)
		if err != nil {
			return false, err
		}
		for _, r := range rc {
			if len(r) == 0 {
				return true, nil
			}
			lo, err := cutAllows(ctx, typ, v, r[0].LowerBound, true)
			if err != nil {
				return true, nil
			}
			hi, err := cutAllows(ctx, typ, v, r[0].UpperBound, false)
			if err != nil {
				return true, nil
			}
			if lo && hi {
				return true, nil
			}
		}
		return false, nil
	}
}

// cutAllows reports whether v lies on the allowed side of a range cut (lower or upper).
// NULL sorts below every value, as in the engine's ranges. Unknown cuts allow everything:
// the filter above the scan still applies the exact predicate.
func cutAllows(ctx *gms.Context, typ gms.Type, v any, cut gms.MySQLRangeCut, lower bool) (bool, error) {
	switch c := cut.(type) {
	case gms.AboveAll:
		return !lower, nil
	case gms.BelowNull:
		return lower, nil
	case gms.AboveNull:
		return (v != nil) == lower, nil
	case gms.Above:
		if v == nil {
			return !lower, nil
		}
		cmp, err := typ.Compare(ctx, v, c.Key)
		if lower {
			return cmp > 0, err
		}
		return cmp <= 0, err
	case gms.Below:
		if v == nil {
			return !lower, nil
		}
		cmp, err := typ.Compare(ctx, v, c.Key)
		if lower {
			return cmp >= 0, err
		}
		return cmp < 0, err
	}
	return true, nil
}
