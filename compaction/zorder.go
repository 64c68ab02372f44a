package compaction

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// MaxZOrderBytes bounds the Parquet bytes of one partition that ZORDER rewrites: the
// partition is sorted in memory, which takes several times its compressed size.
var MaxZOrderBytes int64 = 4 << 30

// ZOrder rewrites every file of the table (or of the selected partitions) so rows are in
// Z-order of cols: the interleaved bits of each column's rank. Files then cover compact
// boxes of the columns' joint space, and min/max statistics prune on each column alone.
func ZOrder(ctx context.Context, t Table, cols []string, o Options) (Result, error) {
	snap, err := t.Log.Snapshot(ctx, -1)
	if err != nil {
		return Result{}, err
	}
	zcols, err := zorderColumns(snap, cols)
	if err != nil {
		return Result{}, err
	}
	return run(ctx, t, &o, "OPTIMIZE", zcols, func(parts []*partition) [][]*txlog.Add {
		var work [][]*txlog.Add
		for _, p := range parts {
			if len(p.files) > 0 {
				work = append(work, p.files)
			}
		}
		return work
	}, zorderGroup)
}

// zorderColumns checks cols against the schema and returns them as the schema spells them.
func zorderColumns(snap *txlog.Snapshot, cols []string) ([]string, error) {
	if len(cols) == 0 {
		return nil, badArg("ZORDER needs at least one column")
	}
	if len(cols) > 32 {
		return nil, badArg("ZORDER takes at most 32 columns, got %d", len(cols))
	}
	var out []string
	for _, c := range cols {
		c = strings.TrimSpace(c)
		var field *txlog.StructField
		for i := range snap.Schema.Fields {
			if strings.EqualFold(snap.Schema.Fields[i].Name, c) {
				field = &snap.Schema.Fields[i]
			}
		}
		if field == nil {
			names := make([]string, len(snap.Schema.Fields))
			for i, f := range snap.Schema.Fields {
				names[i] = f.Name
			}
			return nil, badArg("ZORDER column %q does not exist; columns are: %s", c, strings.Join(names, ", "))
		}
		for _, p := range snap.Metadata.PartitionColumns {
			if strings.EqualFold(p, field.Name) {
				return nil, badArg("ZORDER column %q is a partition column: each file holds one value of it already", field.Name)
			}
		}
		at, err := table.ArrowType(field.Type)
		if err != nil || !orderable(at) {
			return nil, badArg("ZORDER column %q has type %s, which has no order to cluster by; use numbers, strings, dates or timestamps", field.Name, typeName(field.Type))
		}
		if slices.ContainsFunc(out, func(s string) bool { return strings.EqualFold(s, field.Name) }) {
			return nil, badArg("ZORDER column %q is listed twice", field.Name)
		}
		out = append(out, field.Name)
	}
	return out, nil
}

func typeName(t txlog.DataType) string {
	if t.Name != "" {
		return t.Name
	}
	switch {
	case t.Struct != nil:
		return "struct"
	case t.Array != nil:
		return "array"
	case t.Map != nil:
		return "map"
	}
	return "unknown"
}

func orderable(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT32, arrow.FLOAT64, arrow.STRING, arrow.LARGE_STRING, arrow.DATE32, arrow.TIMESTAMP,
		arrow.DECIMAL128, arrow.BOOL:
		return true
	}
	return false
}

// zorderGroup reads one partition's files, sorts their rows by Z-value and writes them.
func zorderGroup(ctx context.Context, t Table, snap *txlog.Snapshot, group []*txlog.Add, w *table.Writer, o *Options, zcols []string) error {
	var size int64
	for _, f := range group {
		size += f.Size
	}
	if size > MaxZOrderBytes {
		return badArg("ZORDER of a partition of %d MiB is over the %d MiB an in-memory sort allows; partition the table or ZORDER fewer partitions with a predicate", size>>20, MaxZOrderBytes>>20)
	}
	var recs []arrow.RecordBatch
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	err := eachRecord(ctx, t, snap, group, o, func(rec arrow.RecordBatch) error {
		if rec.NumRows() == 0 {
			rec.Release()
			return nil
		}
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	sch := recs[0].Schema()
	var n int
	for _, r := range recs {
		n += int(r.NumRows())
	}
	if n > math.MaxUint32 {
		return badArg("ZORDER of a partition of %d rows is over the 2^32 rows one sort handles", n)
	}

	// Rank each column, interleave the ranks' bits, and order the rows by the result.
	bitsPer := min(64/len(zcols), 32)
	ranks := make([][]uint64, len(zcols))
	for i, c := range zcols {
		col := sch.FieldIndices(c)
		if len(col) == 0 {
			return fmt.Errorf("compaction: ZORDER column %s missing from the scan", c)
		}
		ranks[i] = scaledRanks(recs, col[0], n, bitsPer)
	}
	order := make([]zrow, n)
	for r := range order {
		order[r] = zrow{z: interleave(ranks, r, bitsPer), row: uint32(r)}
	}
	ranks = nil
	slices.SortFunc(order, func(a, b zrow) int {
		if c := cmp.Compare(a.z, b.z); c != 0 {
			return c
		}
		return cmp.Compare(a.row, b.row)
	})

	// Concatenate the partition into one record and take rows in Z-order, a chunk at a time.
	cols := make([]arrow.Array, sch.NumFields())
	for c := range cols {
		parts := make([]arrow.Array, len(recs))
		for i, r := range recs {
			parts[i] = r.Column(c)
		}
		arr, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			return fmt.Errorf("compaction: ZORDER: %w", err)
		}
		cols[c] = arr
	}
	for _, r := range recs {
		r.Release()
	}
	recs = nil
	whole := array.NewRecordBatch(sch, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	defer whole.Release()

	// Files are cells of the Z-curve: a range of rows that share a prefix of Z-value bits
	// is a box in the columns' joint space, so each file's min/max statistics are tight on
	// every column. A cell with more rows than a file should hold is split in two by its
	// next bit, so files hold between about half and all of the target.
	perFile := n
	if size > 0 {
		perFile = max(int(float64(n)*float64(o.TargetSize)/float64(size)), 1)
	}
	var cells [][2]int
	var split func(lo, hi, bit int)
	split = func(lo, hi, bit int) {
		if lo >= hi {
			return
		}
		if hi-lo <= perFile || bit < 0 {
			cells = append(cells, [2]int{lo, hi})
			return
		}
		mask := uint64(1) << uint(bit)
		mid := lo + sort.Search(hi-lo, func(i int) bool { return order[lo+i].z&mask != 0 })
		split(lo, mid, bit-1)
		split(mid, hi, bit-1)
	}
	split(0, n, bitsPer*len(zcols)-1)

	const chunk = 64 << 10
	idx := array.NewUint32Builder(memory.DefaultAllocator)
	defer idx.Release()
	for _, c := range cells {
		for start := c[0]; start < c[1]; start += chunk {
			end := min(start+chunk, c[1])
			for _, zr := range order[start:end] {
				idx.Append(zr.row)
			}
			ia := idx.NewArray()
			taken, err := takeRecord(ctx, whole, ia)
			ia.Release()
			if err != nil {
				return err
			}
			err = w.Write(ctx, taken)
			taken.Release()
			if err != nil {
				return err
			}
		}
		if err := w.Roll(ctx); err != nil {
			return err
		}
	}
	return nil
}

type zrow struct {
	z   uint64
	row uint32
}

// takeRecord returns the rows of rec at indices, in that order.
func takeRecord(ctx context.Context, rec arrow.RecordBatch, indices arrow.Array) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, rec.NumCols())
	for i := range cols {
		c, err := compute.TakeArray(ctx, rec.Column(i), indices)
		if err != nil {
			for _, done := range cols[:i] {
				done.Release()
			}
			return nil, fmt.Errorf("compaction: ZORDER take: %w", err)
		}
		cols[i] = c
	}
	out := array.NewRecordBatch(rec.Schema(), cols, int64(indices.Len()))
	for _, c := range cols {
		c.Release()
	}
	return out, nil
}

// interleave builds the Z-value of row r: bit b of every dimension's rank, from the most
// significant down, one dimension after another.
func interleave(ranks [][]uint64, r, bitsPer int) uint64 {
	var z uint64
	for b := bitsPer - 1; b >= 0; b-- {
		for _, rk := range ranks {
			z = z<<1 | (rk[r]>>uint(b))&1
		}
	}
	return z
}

// scaledRanks ranks the rows by column col (NULLs first, equal values equal rank) and
// scales the ranks to bitsPer bits, so every column spreads over the same range whatever
// its values: Z-order by rank, not by raw value, so skewed columns still cluster evenly.
func scaledRanks(recs []arrow.RecordBatch, col, n, bitsPer int) []uint64 {
	keys := make([]sortKey, 0, n)
	for _, r := range recs {
		arr := r.Column(col)
		for i := 0; i < arr.Len(); i++ {
			keys = append(keys, keyOf(arr, i, uint32(len(keys))))
		}
	}
	slices.SortFunc(keys, compareKeys)
	out := make([]uint64, n)
	scale := math.Ldexp(1, bitsPer) / float64(n)
	rank := 0
	for i, k := range keys {
		if i > 0 && compareKeys(keys[i-1], k) != 0 {
			rank = i
		}
		out[k.row] = uint64(float64(rank) * scale)
	}
	return out
}

// sortKey is one row's value of a Z-order column in a comparable form: numbers as
// float64 (exact for the ranks' purpose: only the order matters), strings as strings.
type sortKey struct {
	null bool
	num  float64
	str  string
	row  uint32
}

func compareKeys(a, b sortKey) int {
	switch {
	case a.null || b.null:
		return cmp.Compare(b2i(!a.null), b2i(!b.null))
	case a.str != "" || b.str != "":
		return strings.Compare(a.str, b.str)
	}
	return cmp.Compare(a.num, b.num)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func keyOf(arr arrow.Array, i int, row uint32) sortKey {
	if arr.IsNull(i) {
		return sortKey{null: true, row: row}
	}
	k := sortKey{row: row}
	switch a := arr.(type) {
	case *array.Int8:
		k.num = float64(a.Value(i))
	case *array.Int16:
		k.num = float64(a.Value(i))
	case *array.Int32:
		k.num = float64(a.Value(i))
	case *array.Int64:
		k.num = float64(a.Value(i))
	case *array.Uint8:
		k.num = float64(a.Value(i))
	case *array.Uint16:
		k.num = float64(a.Value(i))
	case *array.Uint32:
		k.num = float64(a.Value(i))
	case *array.Uint64:
		k.num = float64(a.Value(i))
	case *array.Float32:
		k.num = float64(a.Value(i))
	case *array.Float64:
		k.num = a.Value(i)
	case *array.String:
		k.str = a.Value(i)
	case *array.LargeString:
		k.str = a.Value(i)
	case *array.Date32:
		k.num = float64(a.Value(i))
	case *array.Timestamp:
		k.num = float64(a.Value(i))
	case *array.Decimal128:
		k.num = a.Value(i).ToFloat64(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Boolean:
		k.num = float64(b2i(a.Value(i)))
	}
	if math.IsNaN(k.num) {
		k.num = math.Inf(1) // NaN sorts last, as Spark orders it
	}
	return k
}
