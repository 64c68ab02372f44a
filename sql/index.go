package sql

import (
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
