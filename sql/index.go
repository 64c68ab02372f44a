package sql

import (
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

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
	nt.points = &pointCache{}
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
	if check := intKeyRangeCheck(rc, as.Field(col).Type, col); check != nil {
		return check
	}
	read := readerFor(as.Field(col).Type, typ)
	if check := pointSetCheck(ctx, rc, typ, read, col); check != nil {
		return check
	}
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

// pointSetCheck is keyRangeCheck for an IN list (or one =) on a string key compared byte
// for byte (the default utf8mb4_0900_bin collation): a row is tested with one map
// lookup instead of a collation comparison against every range, which made an IN list of
// 250 run ids cost 500 comparisons per row. It returns nil when a range is not a single
// non-NULL value or the collation folds case or pads.
func pointSetCheck(ctx *gms.Context, rc gms.MySQLRangeCollection, typ gms.Type, read func(arrow.Array, int) (any, error), col int) func(arrow.RecordBatch, int) (bool, error) {
	st, ok := typ.(gms.StringType)
	if !ok || st.Collation() != gms.Collation_utf8mb4_0900_bin {
		return nil
	}
	set := make(map[string]struct{}, len(rc))
	for _, r := range rc {
		if len(r) == 0 {
			return nil
		}
		lo, ok1 := r[0].LowerBound.(gms.Below)
		hi, ok2 := r[0].UpperBound.(gms.Above)
		if !ok1 || !ok2 || lo.Key == nil || hi.Key == nil {
			return nil
		}
		if c, err := typ.Compare(ctx, lo.Key, hi.Key); err != nil || c != 0 {
			return nil
		}
		k, _, err := typ.Convert(ctx, lo.Key)
		if err != nil {
			return nil
		}
		ks, ok := k.(string)
		if !ok {
			return nil
		}
		set[ks] = struct{}{}
	}
	return func(rec arrow.RecordBatch, i int) (bool, error) {
		v, err := read(rec.Column(col), i)
		if err != nil {
			return false, err
		}
		s, ok := v.(string)
		if !ok {
			return false, nil
		}
		_, in := set[s]
		return in, nil
	}
}

// intRange is one range of an integer key as inclusive bounds on non-NULL values.
type intRange struct {
	lo, hi int64
	none   bool // no non-NULL value
	null   bool // NULL is in the range
}

// intKeyRangeCheck is keyRangeCheck for an integer key column, the usual primary key: the
// ranges become inclusive int64 bounds once, and each row is tested on the Arrow array
// without boxing its value or calling the engine's generic comparison, which made a point
// lookup cost ~50 ns per row of the file. It returns nil when the column or a bound is not
// an integer (the generic check then applies).
func intKeyRangeCheck(rc gms.MySQLRangeCollection, dt arrow.DataType, col int) func(arrow.RecordBatch, int) (bool, error) {
	var value func(arrow.Array, int) int64
	switch dt.ID() {
	case arrow.INT64:
		value = func(a arrow.Array, i int) int64 { return a.(*array.Int64).Value(i) }
	case arrow.INT32:
		value = func(a arrow.Array, i int) int64 { return int64(a.(*array.Int32).Value(i)) }
	case arrow.INT16:
		value = func(a arrow.Array, i int) int64 { return int64(a.(*array.Int16).Value(i)) }
	case arrow.INT8:
		value = func(a arrow.Array, i int) int64 { return int64(a.(*array.Int8).Value(i)) }
	default:
		return nil
	}
	ranges := make([]intRange, 0, len(rc))
	for _, r := range rc {
		if len(r) == 0 {
			return nil
		}
		ir, ok := toIntRange(r[0].LowerBound, r[0].UpperBound)
		if !ok {
			return nil
		}
		ranges = append(ranges, ir)
	}
	return func(rec arrow.RecordBatch, i int) (bool, error) {
		a := rec.Column(col)
		if a.IsNull(i) {
			for _, r := range ranges {
				if r.null {
					return true, nil
				}
			}
			return false, nil
		}
		v := value(a, i)
		for _, r := range ranges {
			if !r.none && v >= r.lo && v <= r.hi {
				return true, nil
			}
		}
		return false, nil
	}
}

// toIntRange turns a range's cuts into inclusive integer bounds, with cutAllows's meaning.
func toIntRange(lower, upper gms.MySQLRangeCut) (intRange, bool) {
	r := intRange{lo: math.MinInt64, hi: math.MaxInt64}
	_, lowerBelowNull := lower.(gms.BelowNull)
	switch c := lower.(type) {
	case gms.BelowNull, gms.AboveNull:
	case gms.AboveAll:
		r.none = true
	case gms.Above, gms.Below:
		k, ok := intKey(cutKey(c))
		if !ok {
			return r, false
		}
		if _, above := c.(gms.Above); above {
			if k == math.MaxInt64 {
				r.none = true
			}
			k++
		}
		r.lo = k
	default:
		return r, false
	}
	upperAllowsNull := true
	switch c := upper.(type) {
	case gms.AboveAll:
	case gms.BelowNull:
		r.none, upperAllowsNull = true, false
	case gms.AboveNull:
		r.none = true
	case gms.Above, gms.Below:
		k, ok := intKey(cutKey(c))
		if !ok {
			return r, false
		}
		if _, below := c.(gms.Below); below {
			if k == math.MinInt64 {
				r.none = true
			}
			k--
		}
		r.hi = k
	default:
		return r, false
	}
	r.null = lowerBelowNull && upperAllowsNull
	return r, true
}

func cutKey(c gms.MySQLRangeCut) any {
	switch x := c.(type) {
	case gms.Above:
		return x.Key
	case gms.Below:
		return x.Key
	}
	return nil
}

// intKey is an integer range bound as int64, if it is one.
func intKey(v any) (int64, bool) {
	switch x := v.(type) {
	case int8, int16, int32, int64, uint8, uint16, uint32:
		return toInt64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case int:
		return int64(x), true
	}
	return 0, false
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
