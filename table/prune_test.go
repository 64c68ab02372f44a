package table

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehoused/lakehoused/txlog"
)

// rowValue is the canonical value of row i (see valueKind), ok=false for NULL.
func rowValue(arr arrow.Array, i int) (any, bool) {
	if arr.IsNull(i) {
		return nil, false
	}
	switch a := arr.(type) {
	case *array.Int8:
		return int64(a.Value(i)), true
	case *array.Int16:
		return int64(a.Value(i)), true
	case *array.Int32:
		return int64(a.Value(i)), true
	case *array.Int64:
		return a.Value(i), true
	case *array.Float32:
		return float64(a.Value(i)), true
	case *array.Float64:
		return a.Value(i), true
	case *array.String:
		return a.Value(i), true
	case *array.Boolean:
		return a.Value(i), true
	case *array.Date32:
		return int64(a.Value(i)), true
	case *array.Timestamp:
		return int64(a.Value(i)), true
	case *array.Decimal128:
		r, _ := new(big.Rat).SetString(a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale))
		return r, true
	}
	panic(fmt.Sprintf("rowValue: %T", arr))
}

// rowMatches evaluates f on row i of rec (full table schema) the way a SQL engine would.
func rowMatches(s *txlog.Schema, rec arrow.RecordBatch, i int, f *Filter) bool {
	for _, cf := range f.Columns {
		j := fieldIndex(s.Fields, cf.Column)
		k := kindOf(s.Fields[j].Type)
		v, ok := rowValue(rec.Column(j), i)
		if cf.IsNull {
			if ok {
				return false
			}
			continue
		}
		if !ok {
			return false
		}
		any := false
		for _, r := range cf.Ranges {
			in := true
			if r.Lo.Value != nil {
				lo, _ := canonical(k, r.Lo.Value)
				c, _ := compareValues(k, v, lo)
				in = in && (c > 0 || (c == 0 && r.Lo.Inclusive))
			}
			if r.Hi.Value != nil {
				hi, _ := canonical(k, r.Hi.Value)
				c, _ := compareValues(k, v, hi)
				in = in && (c < 0 || (c == 0 && r.Hi.Inclusive))
			}
			any = any || in
		}
		if !any {
			return false
		}
	}
	return true
}

var pruneSchemaCols = []string{"id:long", "i:integer", "sh:short", "f:float", "d:double", "s:string", "dt:date", "ts:timestamp", "dec:decimal(10,2)", "b:boolean", "p:string", "pd:date"}

// randomFileJSON makes rows whose values cluster around a per-file centre, so that min/max
// pruning has something to prune.
func randomFileJSON(r *rand.Rand, n int) string {
	centre := r.IntN(1000)
	p := []string{`"x"`, `"y"`, `null`, `"z/=%"`}[r.IntN(4)]
	pd := []string{`"2026-01-01"`, `"2026-06-30"`, `null`}[r.IntN(3)]
	long := strings.Repeat("k", 30+r.IntN(6))
	var rows []string
	for range n {
		v := centre + r.IntN(50)
		field := func(s string) string {
			if r.IntN(8) == 0 {
				return "null"
			}
			return s
		}
		ts := time.Unix(int64(v)*3600, int64(r.IntN(1000000))*1000).UTC().Format(time.RFC3339Nano)
		rows = append(rows, fmt.Sprintf(`{"id":%s,"i":%s,"sh":%s,"f":%s,"d":%s,"s":%s,"dt":%s,"ts":%s,"dec":%s,"b":%s,"p":%s,"pd":%s}`,
			field(fmt.Sprint(v)), field(fmt.Sprint(-v)), field(fmt.Sprint(v%300)),
			field(fmt.Sprintf("%g", float32(v)/10)), field(fmt.Sprintf("%g", float64(v)/7)),
			field(fmt.Sprintf(`"%s%03d"`, long[:r.IntN(len(long))], v)),
			field(fmt.Sprintf(`"%s"`, time.Unix(int64(v)*86400, 0).UTC().Format(dateLayout))),
			field(`"`+ts+`"`), field(fmt.Sprintf(`"%d.%02d"`, v, r.IntN(100))),
			field(fmt.Sprint(r.IntN(2) == 0)), p, pd))
	}
	return "[" + strings.Join(rows, ",") + "]"
}

// randomBound picks a filter value for column kind k near the generated data.
func randomBound(r *rand.Rand, name string) any {
	v := r.IntN(1100) - 20
	switch name {
	case "id":
		if r.IntN(4) == 0 {
			return float64(v) + 0.5 // a float bound on an integer column
		}
		return int64(v)
	case "i":
		return int64(-v)
	case "sh":
		return int64(v % 300)
	case "f":
		return float64(float32(v) / 10)
	case "d":
		return float64(v) / 7
	case "s":
		long := strings.Repeat("k", r.IntN(40))
		return fmt.Sprintf("%s%03d", long, v)
	case "dt":
		return time.Unix(int64(v)*86400, 0).UTC()
	case "ts":
		return time.Unix(int64(v)*3600, int64(r.IntN(1000000))*1000).UTC()
	case "dec":
		return fmt.Sprintf("%d.%02d", v, r.IntN(100))
	case "b":
		return r.IntN(2) == 0
	case "p":
		return []string{"x", "y", "z/=%", "w"}[r.IntN(4)]
	case "pd":
		return []time.Time{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)}[r.IntN(2)]
	}
	panic(name)
}

// sampleBound picks a value that occurs in the data half of the time (boundaries are
// where pruning bugs live), otherwise a random one.
func sampleBound(r *rand.Rand, s *txlog.Schema, all []arrow.RecordBatch, col string) any {
	if r.IntN(2) == 0 && len(all) > 0 {
		rec := all[r.IntN(len(all))]
		j := fieldIndex(s.Fields, col)
		if v, ok := rowValue(rec.Column(j), r.IntN(int(rec.NumRows()))); ok {
			switch kindOf(s.Fields[j].Type) {
			case kindDate:
				return time.Unix(v.(int64)*86400, 0).UTC()
			case kindTimestamp:
				return time.UnixMicro(v.(int64)).UTC()
			}
			return v
		}
	}
	return randomBound(r, col)
}

func randomFilter(r *rand.Rand, s *txlog.Schema, all []arrow.RecordBatch) *Filter {
	randomBound := func(r *rand.Rand, col string) any { return sampleBound(r, s, all, col) }
	f := &Filter{}
	for range 1 + r.IntN(3) {
		col := s.Fields[r.IntN(len(s.Fields))].Name
		cf := ColumnFilter{Column: strings.ToUpper(col[:1]) + col[1:]}
		if r.IntN(10) == 0 {
			cf.IsNull = true
		} else {
			for range 1 + r.IntN(3) {
				var rg Range
				switch r.IntN(4) {
				case 0: // point
					v := randomBound(r, col)
					rg = Range{Lo: Bound{v, true}, Hi: Bound{v, true}}
				case 1:
					rg.Lo = Bound{randomBound(r, col), r.IntN(2) == 0}
				case 2:
					rg.Hi = Bound{randomBound(r, col), r.IntN(2) == 0}
				default:
					rg = Range{Lo: Bound{randomBound(r, col), r.IntN(2) == 0}, Hi: Bound{randomBound(r, col), r.IntN(2) == 0}}
				}
				cf.Ranges = append(cf.Ranges, rg)
			}
		}
		f.Columns = append(f.Columns, cf)
	}
	return f
}

// TestPruningNeverLosesRows is the pruning property: for random data and random filters,
// the rows matching a filter are the same with file and row-group pruning as without.
func TestPruningNeverLosesRows(t *testing.T) {
	t.Parallel()
	s := simpleSchema(pruneSchemaCols...)
	parts := []string{"p", "pd"}
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(seed, 42))
			st := newMemStore()
			var adds []*txlog.Add
			for range 25 {
				rec := recordFromJSON(t, s, randomFileJSON(r, 1+r.IntN(30)))
				adds = append(adds, writeAll(t, st, s, parts, WriterOptions{RowGroupRows: 6}, rec)...)
				rec.Release()
			}
			// Decode everything once for the unpruned answer.
			all := scanRecords(t, st, s, parts, adds, ScanOptions{})
			defer func() {
				for _, rec := range all {
					rec.Release()
				}
			}()
			prunedFiles, prunedRows := 0, int64(0)
			for range 100 {
				f := randomFilter(r, s, all)
				want := matchingRows(s, all, f)
				kept := PruneFiles(s, parts, adds, f)
				prunedFiles += len(adds) - len(kept)
				recs := scanRecords(t, st, s, parts, kept, ScanOptions{Filter: f})
				got := matchingRows(s, recs, f)
				n := 0
				for _, rec := range recs {
					n += int(rec.NumRows())
					rec.Release()
				}
				for _, a := range kept {
					prunedRows += parseStats(a.Stats).numRecords()
				}
				prunedRows -= int64(n)
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("filter %+v: pruning lost rows\nwith pruning:    %q\nwithout pruning: %q", *f, got, want)
				}
			}
			if prunedFiles == 0 || prunedRows == 0 {
				t.Fatalf("pruned %d files and %d rows by row group; the test data does not exercise pruning", prunedFiles, prunedRows)
			}
		})
	}
}

func scanRecords(t *testing.T, st *memStore, s *txlog.Schema, parts []string, files []*txlog.Add, opts ScanOptions) []arrow.RecordBatch {
	t.Helper()
	sc, err := Scan(context.Background(), st, s, parts, files, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	var out []arrow.RecordBatch
	for {
		rec, _, err := sc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

func matchingRows(s *txlog.Schema, recs []arrow.RecordBatch, f *Filter) []string {
	var out []string
	for _, rec := range recs {
		rows := rowStrings(rec)
		for i := range rows {
			if rowMatches(s, rec, i, f) {
				out = append(out, rows[i])
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestPruneFilesCases(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long", "s:string", "ts:timestamp", "f:float", "dec:decimal(10,2)", "p:string", "d:date")
	parts := []string{"p", "d"}
	// Stats as Spark writes them: timestamps truncated to ms (the true max may be later
	// within the millisecond), a long string max truncated without tie-breaker.
	spark := &txlog.Add{Path: "spark", PartitionValues: map[string]string{"p": "a", "d": "2026-11-26"},
		Stats: `{"numRecords":4,"minValues":{"id":1,"s":"apple","ts":"2026-11-26T10:00:00.000Z","f":1.1,"dec":1.50},` +
			`"maxValues":{"id":10,"s":"` + strings.Repeat("m", 32) + `","ts":"2026-11-26T10:00:00.123Z","f":2.5,"dec":99.99},` +
			`"nullCount":{"id":0,"s":1,"ts":0,"f":0,"dec":0}}`}
	null := &txlog.Add{Path: "null", PartitionValues: map[string]string{"p": "", "d": ""},
		Stats: `{"numRecords":2,"minValues":{},"maxValues":{},"nullCount":{"id":2,"s":0}}`}
	nostats := &txlog.Add{Path: "nostats", PartitionValues: map[string]string{"p": "b", "d": "2026-11-27"}}
	files := []*txlog.Add{spark, null, nostats}
	point := func(col string, v any) ColumnFilter {
		return ColumnFilter{Column: col, Ranges: []Range{{Lo: Bound{v, true}, Hi: Bound{v, true}}}}
	}
	above := func(col string, v any, incl bool) ColumnFilter {
		return ColumnFilter{Column: col, Ranges: []Range{{Lo: Bound{v, incl}}}}
	}
	tests := []struct {
		name string
		f    Filter
		want string
	}{
		{"no filter columns", Filter{}, "spark null nostats"},
		{"partition point", Filter{Columns: []ColumnFilter{point("P", "a")}}, "spark"},
		{"partition IS NULL", Filter{Columns: []ColumnFilter{{Column: "p", IsNull: true}}}, "null"},
		{"partition date", Filter{Columns: []ColumnFilter{point("d", time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC))}}, "nostats"},
		{"id above max", Filter{Columns: []ColumnFilter{above("id", int64(10), false)}}, "nostats"},
		{"id at max inclusive", Filter{Columns: []ColumnFilter{above("id", int64(10), true)}}, "spark nostats"},
		{"id float bound", Filter{Columns: []ColumnFilter{above("id", 9.5, true)}}, "spark nostats"},
		{"all-null column never matches a range", Filter{Columns: []ColumnFilter{point("id", int64(1))}}, "spark nostats"},
		{"IS NULL needs a null", Filter{Columns: []ColumnFilter{{Column: "id", IsNull: true}}}, "null nostats"},
		{"ts within the truncated millisecond", Filter{Columns: []ColumnFilter{above("ts", time.Date(2026, 11, 26, 10, 0, 0, 123500000, time.UTC), true)}}, "spark null nostats"},
		{"ts past the millisecond", Filter{Columns: []ColumnFilter{above("ts", time.Date(2026, 11, 26, 10, 0, 0, 124000000, time.UTC), true)}}, "null nostats"},
		{"truncated string max keeps longer values", Filter{Columns: []ColumnFilter{point("s", strings.Repeat("m", 40))}}, "spark null nostats"},
		{"string above truncated max", Filter{Columns: []ColumnFilter{point("s", "n")}}, "null nostats"},
		{"float stats at float32 precision", Filter{Columns: []ColumnFilter{point("f", float64(float32(1.1)))}}, "spark null nostats"},
		{"decimal exact", Filter{Columns: []ColumnFilter{above("dec", "99.991", true)}}, "null nostats"},
		{"decimal at max", Filter{Columns: []ColumnFilter{above("dec", "99.99", true)}}, "spark null nostats"},
		{"empty IN list", Filter{Columns: []ColumnFilter{{Column: "id"}}}, ""},
		{"unknown column is ignored", Filter{Columns: []ColumnFilter{point("nope", int64(1))}}, "spark null nostats"},
		{"unconvertible value keeps (all-null still prunes)", Filter{Columns: []ColumnFilter{point("id", "x")}}, "spark nostats"},
	}
	for _, tc := range tests {
		var got []string
		for _, a := range PruneFiles(s, parts, files, &tc.f) {
			got = append(got, a.Path)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: kept %q, want %q", tc.name, strings.Join(got, " "), tc.want)
		}
	}
}

// TestRowGroupPruning checks that Scan skips row groups whose Parquet statistics exclude
// the filter, and reads the file's other row groups.
func TestRowGroupPruning(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long", "s:string")
	var b strings.Builder
	b.WriteString("[")
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"s":"v%03d"}`, i, i)
	}
	rec := recordFromJSON(t, s, b.String()+"]")
	defer rec.Release()
	st := newMemStore()
	adds := writeAll(t, st, s, nil, WriterOptions{RowGroupRows: 10}, rec)
	tests := []struct {
		f    Filter
		rows int
	}{
		{Filter{Columns: []ColumnFilter{{Column: "id", Ranges: []Range{{Lo: Bound{int64(42), true}, Hi: Bound{int64(42), true}}}}}}, 10},
		{Filter{Columns: []ColumnFilter{{Column: "id", Ranges: []Range{{Lo: Bound{int64(85), false}}}}}}, 20},
		{Filter{Columns: []ColumnFilter{{Column: "s", Ranges: []Range{{Hi: Bound{"v015", true}}}}}}, 20},
		{Filter{Columns: []ColumnFilter{{Column: "id", Ranges: []Range{{Lo: Bound{int64(500), true}}}}}}, 0},
		{Filter{Columns: []ColumnFilter{{Column: "id", IsNull: true}}}, 0},
	}
	for _, tc := range tests {
		rows, sc := scanRows(t, st, s, nil, adds, ScanOptions{Filter: &tc.f})
		if len(rows) != tc.rows {
			t.Errorf("filter %+v: read %d rows, want %d", tc.f, len(rows), tc.rows)
		}
		if sc.FilesRead() != 1 {
			t.Errorf("FilesRead = %d", sc.FilesRead())
		}
	}
}
