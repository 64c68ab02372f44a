package table

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/lakehoused/lakehoused/txlog"
)

// Filter is a conjunction: every ColumnFilter must hold for a row to match. It is a pruning
// hint, not a row filter: files and row groups that cannot hold a matching row are skipped,
// the rest are returned whole and the caller still evaluates its predicate on every row.
type Filter struct {
	Columns []ColumnFilter
}

// ColumnFilter is a disjunction of ranges on one top-level column (named case-insensitively).
// With IsNull set only NULLs match and Ranges are ignored. Without IsNull, NULL never matches
// and a ColumnFilter with no Ranges matches nothing (an empty IN list).
type ColumnFilter struct {
	Column string
	Ranges []Range
	IsNull bool
}

// Range is an interval of values; a point lookup has Lo == Hi, both inclusive.
type Range struct {
	Lo, Hi Bound
}

// Bound is one end of a Range; Value == nil means unbounded on that side.
//
// Value types by column type: integers take int64 (or int, int32, float64); float and
// double take float64; string takes string; boolean takes bool; binary takes []byte; date
// and timestamp take time.Time (or a string in the partition-value forms); decimal takes a
// string of decimal text ("12.50"), an int64, a float64 or a *big.Rat. Numeric comparisons
// across types (and every decimal comparison) are exact: they go through big.Rat, never
// through float64 rounding. A value that cannot be converted disables pruning for that
// column rather than risking a wrong answer.
type Bound struct {
	Value     any
	Inclusive bool
}

// valueKind is the comparison domain of a column type. Canonical Go values: kindInt int64,
// kindFloat32/kindFloat64 float64, kindString string, kindBinary []byte, kindBool bool,
// kindDate int64 days since 1970-01-01, kindTimestamp int64 µs since the epoch (both
// timestamp and timestamp_ntz), kindDecimal *big.Rat.
type valueKind int

const (
	kindNone valueKind = iota // nested or unknown: never pruned on
	kindInt
	kindFloat32
	kindFloat64
	kindString
	kindBinary
	kindBool
	kindDate
	kindTimestamp
	kindDecimal
)

func kindOfArrow(dt arrow.DataType) valueKind {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32:
		return kindInt
	case arrow.FLOAT32:
		return kindFloat32
	case arrow.FLOAT64:
		return kindFloat64
	case arrow.STRING, arrow.LARGE_STRING:
		return kindString
	case arrow.BINARY, arrow.LARGE_BINARY:
		return kindBinary
	case arrow.BOOL:
		return kindBool
	case arrow.DATE32:
		return kindDate
	case arrow.TIMESTAMP:
		return kindTimestamp
	case arrow.DECIMAL128:
		return kindDecimal
	}
	return kindNone
}

func kindOf(t txlog.DataType) valueKind {
	dt, err := ArrowType(t)
	if err != nil {
		return kindNone
	}
	return kindOfArrow(dt)
}

// colRange is what is known about one column in a file or row group. Unknown parts make
// the column prunable only by what is known.
type colRange struct {
	min, max    any  // canonical values, nil = unknown
	maxIsPrefix bool // max may be a truncated prefix of the true max (long strings)
	nullCount   int64
	numRecords  int64 // -1 = unknown; nullCount is meaningful only when numRecords >= 0
}

// canMatch reports whether a column described by r may contain a row satisfying cf. It
// answers true whenever it cannot prove otherwise.
func canMatch(k valueKind, cf *ColumnFilter, r colRange) bool {
	if cf.IsNull {
		return r.numRecords < 0 || r.nullCount > 0
	}
	if r.numRecords >= 0 && r.nullCount >= r.numRecords {
		return false // all NULL: no range matches NULL
	}
	for i := range cf.Ranges {
		if rangeMayOverlap(k, &cf.Ranges[i], r) {
			return true
		}
	}
	return false
}

func rangeMayOverlap(k valueKind, rg *Range, r colRange) bool {
	if rg.Lo.Value != nil && r.max != nil {
		lo, ok := canonical(k, rg.Lo.Value)
		if !ok {
			return true
		}
		c, ok := compareValues(k, lo, r.max)
		if !ok {
			return true
		}
		if c > 0 || (c == 0 && !rg.Lo.Inclusive) {
			// lo lies above the max; a truncated max still bounds every value that does
			// not start with it, so only those can be ruled out.
			if !(r.maxIsPrefix && k == kindString && strings.HasPrefix(lo.(string), r.max.(string))) {
				return false
			}
		}
	}
	if rg.Hi.Value != nil && r.min != nil {
		hi, ok := canonical(k, rg.Hi.Value)
		if !ok {
			return true
		}
		c, ok := compareValues(k, hi, r.min)
		if !ok {
			return true
		}
		if c < 0 || (c == 0 && !rg.Hi.Inclusive) {
			return false
		}
	}
	if rg.Lo.Value != nil && rg.Hi.Value != nil {
		lo, ok1 := canonical(k, rg.Lo.Value)
		hi, ok2 := canonical(k, rg.Hi.Value)
		if ok1 && ok2 {
			if c, ok := compareValues(k, lo, hi); ok && (c > 0 || (c == 0 && !(rg.Lo.Inclusive && rg.Hi.Inclusive))) {
				return false // empty range
			}
		}
	}
	return true
}

// canonical converts a filter value to the canonical value of kind k.
func canonical(k valueKind, v any) (any, bool) {
	switch k {
	case kindInt, kindFloat32, kindFloat64, kindDecimal:
		switch x := v.(type) {
		case int64:
			return x, true
		case int:
			return int64(x), true
		case int32:
			return int64(x), true
		case int16:
			return int64(x), true
		case int8:
			return int64(x), true
		case float64:
			if math.IsNaN(x) {
				return nil, false
			}
			return x, true
		case float32:
			return float64(x), !math.IsNaN(float64(x))
		case *big.Rat:
			return x, x != nil
		case string:
			r, ok := new(big.Rat).SetString(strings.TrimSpace(x))
			return r, ok
		case json.Number:
			r, ok := new(big.Rat).SetString(string(x))
			return r, ok
		}
	case kindString:
		switch x := v.(type) {
		case string:
			return x, true
		case []byte:
			return string(x), true
		}
	case kindBinary:
		switch x := v.(type) {
		case string:
			return []byte(x), true
		case []byte:
			return x, true
		}
	case kindBool:
		x, ok := v.(bool)
		return x, ok
	case kindDate:
		switch x := v.(type) {
		case time.Time:
			y, m, d := x.Date()
			return floorDiv(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix(), 86400), true
		case string:
			c, err := parsePartitionValue(kindDate, x)
			return c, err == nil
		}
	case kindTimestamp:
		switch x := v.(type) {
		case time.Time:
			return x.UnixMicro(), true
		case string:
			c, err := parsePartitionValue(kindTimestamp, x)
			return c, err == nil
		}
	}
	return nil, false
}

// compareValues compares two canonical values of kind k. Numbers of different Go types
// are compared exactly through big.Rat.
func compareValues(k valueKind, a, b any) (int, bool) {
	switch k {
	case kindInt, kindFloat32, kindFloat64, kindDecimal, kindDate, kindTimestamp:
		if x, ok := a.(int64); ok {
			if y, ok := b.(int64); ok {
				return cmp3(x, y), true
			}
		}
		if x, ok := a.(float64); ok {
			if y, ok := b.(float64); ok {
				if math.IsNaN(x) || math.IsNaN(y) {
					return 0, false
				}
				return cmp3(x, y), true
			}
		}
		ra, ok1 := toRat(a)
		rb, ok2 := toRat(b)
		if !ok1 || !ok2 {
			return 0, false
		}
		return ra.Cmp(rb), true
	case kindString:
		x, ok1 := a.(string)
		y, ok2 := b.(string)
		return strings.Compare(x, y), ok1 && ok2
	case kindBinary:
		x, ok1 := a.([]byte)
		y, ok2 := b.([]byte)
		return bytes.Compare(x, y), ok1 && ok2
	case kindBool:
		x, ok1 := a.(bool)
		y, ok2 := b.(bool)
		return cmp3(b2i(x), b2i(y)), ok1 && ok2
	}
	return 0, false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func cmp3[T int | int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func toRat(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case int64:
		return new(big.Rat).SetInt64(x), true
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, false
		}
		return new(big.Rat).SetFloat64(x), true
	case *big.Rat:
		return x, x != nil
	}
	return nil, false
}

// PruneFiles returns the files that may contain rows matching f, in the given order. It
// prunes on partition values and on the min/max/nullCount statistics in add.stats; a file
// without usable statistics is kept. It never drops a file that could hold a match.
func PruneFiles(schema *txlog.Schema, partitionCols []string, files []*txlog.Add, f *Filter) []*txlog.Add {
	if f == nil || len(f.Columns) == 0 || schema == nil {
		return files
	}
	type check struct {
		cf        *ColumnFilter
		name      string // schema spelling, for stats lookup
		kind      valueKind
		partition bool
	}
	var checks []check
	for i := range f.Columns {
		cf := &f.Columns[i]
		j := fieldIndex(schema.Fields, cf.Column)
		if j < 0 {
			continue // unknown column: nothing to prune on
		}
		fld := schema.Fields[j]
		c := check{cf: cf, name: fld.Name, kind: kindOf(fld.Type)}
		for _, p := range partitionCols {
			if strings.EqualFold(p, fld.Name) {
				c.partition = true
			}
		}
		if c.kind == kindNone && !cf.IsNull && !c.partition {
			continue
		}
		checks = append(checks, c)
	}
	out := make([]*txlog.Add, 0, len(files))
	for _, add := range files {
		var st *parsedStats
		keep := true
		for _, c := range checks {
			var r colRange
			if c.partition {
				r = partitionRange(c.kind, add.PartitionValues, c.name)
			} else {
				if st == nil {
					st = parseStats(add.Stats)
				}
				r = st.rangeOf(c.kind, c.name)
			}
			if !canMatch(c.kind, c.cf, r) {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, add)
		}
	}
	return out
}

// partitionRange describes a file's single partition value as a one-row range.
func partitionRange(k valueKind, pv map[string]string, name string) colRange {
	s, present := lookupFold(pv, name)
	if !present || s == "" {
		return colRange{nullCount: 1, numRecords: 1}
	}
	v, err := parsePartitionValue(k, s)
	if err != nil {
		return colRange{numRecords: -1}
	}
	return colRange{min: v, max: v, nullCount: 0, numRecords: 1}
}

// PartitionValue finds a file's partition value by column name, exact spelling first
// (writers disagree on the case of partition column names).
func PartitionValue(m map[string]string, name string) (string, bool) { return lookupFold(m, name) }

// lookupFold finds a partition value by column name, exact spelling first.
func lookupFold(m map[string]string, name string) (string, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// parsedStats is add.stats decoded for pruning.
type parsedStats struct {
	NumRecords *int64                     `json:"numRecords"`
	MinValues  map[string]json.RawMessage `json:"minValues"`
	MaxValues  map[string]json.RawMessage `json:"maxValues"`
	NullCount  map[string]json.RawMessage `json:"nullCount"`
}

func parseStats(s string) *parsedStats {
	var p parsedStats
	if s == "" {
		return &p
	}
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&p); err != nil {
		return &parsedStats{}
	}
	return &p
}

// rangeOf reads the stats of top-level column name. Stats written by other engines may
// round differently than ours, so bounds are widened where the protocol allows slack:
// timestamp maxima are truncated to milliseconds by Spark (not rounded up), so up to
// 999µs is added; strings of 32 or more characters may be truncated prefixes.
func (p *parsedStats) rangeOf(k valueKind, name string) colRange {
	r := colRange{numRecords: -1}
	if p.NumRecords != nil {
		if nc, ok := jsonInt(lookupRaw(p.NullCount, name)); ok {
			r.numRecords, r.nullCount = *p.NumRecords, nc
		}
	}
	r.min = statValue(k, lookupRaw(p.MinValues, name))
	r.max = statValue(k, lookupRaw(p.MaxValues, name))
	switch k {
	case kindTimestamp:
		if r.max != nil {
			r.max = r.max.(int64) + 999
		}
	case kindString:
		if r.max != nil && utf8.RuneCountInString(r.max.(string)) >= 32 {
			r.maxIsPrefix = true
		}
	case kindFloat32, kindFloat64:
		// NaN is not ordered; a file with NaNs may have stats that ignore them, which is
		// harmless for range filters (NaN matches no range).
	}
	return r
}

func lookupRaw(m map[string]json.RawMessage, name string) json.RawMessage {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

func jsonInt(raw json.RawMessage) (int64, bool) {
	var n json.Number
	if raw == nil || json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	v, err := n.Int64()
	return v, err == nil
}

// statValue decodes one min/max stat into the canonical value of kind k, nil if absent or
// unreadable (which disables pruning on that side).
func statValue(k valueKind, raw json.RawMessage) any {
	if raw == nil || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	switch k {
	case kindInt:
		if v, ok := jsonInt(raw); ok {
			return v
		}
	case kindFloat32, kindFloat64:
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return nil
		}
		bits := 64
		if k == kindFloat32 {
			// Parse at float32 precision: the stat "1.1" of a float column stands for
			// float32(1.1), which is larger than float64(1.1).
			bits = 32
		}
		f, err := parseFloatBits(string(n), bits)
		if err != nil || math.IsNaN(f) {
			return nil
		}
		return f
	case kindDecimal:
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return nil
			}
			n = json.Number(s)
		}
		r, ok := new(big.Rat).SetString(string(n))
		if !ok {
			return nil
		}
		return r
	case kindString:
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case kindDate, kindTimestamp:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil
		}
		if v, err := parsePartitionValue(k, s); err == nil {
			return v
		}
	}
	return nil
}

func parseFloatBits(s string, bits int) (float64, error) {
	return strconv.ParseFloat(s, bits)
}
