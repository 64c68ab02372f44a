package sql

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
)

// TestIntKeyRangeCheckMatchesGeneric: the integer fast path of keyRangeCheck accepts
// exactly the rows the generic cut comparison accepts, for every kind of cut, NULLs and the
// int64 extremes.
func TestIntKeyRangeCheckMatchesGeneric(t *testing.T) {
	ctx := gms.NewEmptyContext()
	vals := []any{nil, int64(math.MinInt64), int64(-5), int64(-1), int64(0), int64(1), int64(2), int64(5), int64(7), int64(math.MaxInt64)}
	b := array.NewInt64Builder(memory.DefaultAllocator)
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
		} else {
			b.Append(v.(int64))
		}
	}
	arr := b.NewInt64Array()
	defer arr.Release()
	sch := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	rec := array.NewRecordBatch(sch, []arrow.Array{arr}, int64(arr.Len()))
	defer rec.Release()

	keys := []any{int64(math.MinInt64), int64(-1), int64(0), int64(2), int32(5), uint8(7), int64(math.MaxInt64)}
	cut := func(rng *rand.Rand) gms.MySQLRangeCut {
		switch rng.IntN(6) {
		case 0:
			return gms.BelowNull{}
		case 1:
			return gms.AboveNull{}
		case 2:
			return gms.AboveAll{}
		case 3:
			return gms.Above{Key: keys[rng.IntN(len(keys))]}
		default:
			return gms.Below{Key: keys[rng.IntN(len(keys))]}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 2000; trial++ {
		var rc gms.MySQLRangeCollection
		for range 1 + rng.IntN(3) {
			rc = append(rc, gms.MySQLRange{gms.MySQLRangeColumnExpr{LowerBound: cut(rng), UpperBound: cut(rng), Typ: types.Int64}})
		}
		fast := intKeyRangeCheck(rc, arrow.PrimitiveTypes.Int64, 0)
		if fast == nil {
			t.Fatalf("no fast path for %v", rc)
		}
		for i, v := range vals {
			want := false
			for _, r := range rc {
				lo, _ := cutAllows(ctx, types.Int64, v, r[0].LowerBound, true)
				hi, _ := cutAllows(ctx, types.Int64, v, r[0].UpperBound, false)
				want = want || (lo && hi)
			}
			got, _ := fast(rec, i)
			if got != want {
				t.Fatalf("ranges %v, value %v: fast %v, generic %v", rc, v, got, want)
			}
		}
	}
	// A bound that is not an integer leaves the generic check in charge.
	rc := gms.MySQLRangeCollection{{gms.MySQLRangeColumnExpr{LowerBound: gms.Below{Key: 1.5}, UpperBound: gms.AboveAll{}, Typ: types.Float64}}}
	if intKeyRangeCheck(rc, arrow.PrimitiveTypes.Int64, 0) != nil {
		t.Error("fast path taken for a float bound")
	}
}
