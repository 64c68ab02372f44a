package table

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// Delta statistics rules (PROTOCOL.md "Per-file Statistics", Spark's defaults):
const (
	// statsStringPrefix is delta.dataSkippingStringPrefixLength: strings are cut to this
	// many characters.
	statsStringPrefix = 32
	// statsMaxCutSearch bounds how far the cut of a max string may move to find a
	// position where a tie-breaker makes it an upper bound; beyond it the max is omitted.
	statsMaxCutSearch = 64
	statsTimeLayout   = "2006-01-02T15:04:05.000Z07:00"
	statsNTZLayout    = "2006-01-02T15:04:05.000"
)

// statsCollector accumulates the stats of one data file across the batches written to it.
// Stats are computed from the Arrow arrays, not read back from Parquet footers, so they
// follow the Delta rules exactly (truncation, ms timestamps) whatever the Parquet library
// does.
type statsCollector struct {
	numRecords int64
	cols       []*statsNode
}

// statsNode is one column in the stats tree: a struct with children, or a leaf.
type statsNode struct {
	name     string
	children []*statsNode // struct fields that are within the indexed-column budget
	isStruct bool
	kind     valueKind // kindNone, kindBool, kindBinary: nullCount only
	scale    int32     // decimal scale
	unit     arrow.TimeUnit
	ntz      bool

	nullCount int64
	has       bool // min/max seen
	broken    bool // min/max unusable (±Inf, invalid UTF-8): omit them
	minI      int64
	maxI      int64
	minF      float64
	maxF      float64
	minS      string
	maxS      string
	minD      decimal128.Num
	maxD      decimal128.Num
}

// newStatsCollector builds the tree for the data (non-partition) fields, taking the first
// limit leaf columns in schema order; nested structs count their leaves, arrays and maps
// count as one.
func newStatsCollector(fields []arrow.Field, limit int) *statsCollector {
	budget := limit
	return &statsCollector{cols: statsNodes(fields, &budget)}
}

func statsNodes(fields []arrow.Field, budget *int) []*statsNode {
	var out []*statsNode
	for _, f := range fields {
		if *budget <= 0 {
			break
		}
		n := &statsNode{name: f.Name}
		if st, ok := f.Type.(*arrow.StructType); ok {
			n.isStruct = true
			n.children = statsNodes(st.Fields(), budget)
			if len(n.children) == 0 {
				continue
			}
		} else {
			*budget--
			n.kind = kindOfArrow(f.Type)
			switch t := f.Type.(type) {
			case *arrow.Decimal128Type:
				n.scale = t.Scale
			case *arrow.TimestampType:
				n.unit, n.ntz = t.Unit, t.TimeZone == ""
			}
		}
		out = append(out, n)
	}
	return out
}

// add folds a batch of the data columns (same order as the fields given at creation).
func (c *statsCollector) add(rec arrow.RecordBatch) {
	c.numRecords += rec.NumRows()
	for _, n := range c.cols {
		if i := arrowFieldIndex(rec.Schema().Fields(), n.name); i >= 0 {
			n.add(rec.Column(i), nil)
		}
	}
}

func arrowFieldIndex(fs []arrow.Field, name string) int {
	for i, f := range fs {
		if f.Name == name {
			return i
		}
	}
	for i, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return i
		}
	}
	return -1
}

// add folds arr; parentValid (nil = all valid) marks rows whose enclosing structs are
// non-null: a field of a NULL struct counts as NULL, as Spark counts it.
func (n *statsNode) add(arr arrow.Array, parentValid []bool) {
	length := arr.Len()
	valid := parentValid
	if arr.NullN() > 0 {
		v := make([]bool, length)
		for i := range v {
			v[i] = (parentValid == nil || parentValid[i]) && arr.IsValid(i)
		}
		valid = v
	}
	for _, ok := range valid {
		if !ok {
			n.nullCount++
		}
	}
	if n.isStruct {
		st := arr.(*array.Struct)
		fs := st.DataType().(*arrow.StructType).Fields()
		for _, c := range n.children {
			if j := arrowFieldIndex(fs, c.name); j >= 0 {
				c.add(st.Field(j), valid)
			}
		}
		return
	}
	ok := func(i int) bool { return valid == nil || valid[i] }
	switch a := arr.(type) {
	case *array.Int8:
		addInts(n, a.Int8Values(), ok)
	case *array.Int16:
		addInts(n, a.Int16Values(), ok)
	case *array.Int32:
		addInts(n, a.Int32Values(), ok)
	case *array.Int64:
		addInts(n, a.Int64Values(), ok)
	case *array.Date32:
		addInts(n, a.Date32Values(), ok)
	case *array.Timestamp:
		addInts(n, a.TimestampValues(), ok)
	case *array.Float32:
		addFloats(n, a.Float32Values(), ok)
	case *array.Float64:
		addFloats(n, a.Float64Values(), ok)
	case *array.String:
		for i := 0; i < length; i++ {
			if ok(i) {
				n.addString(a.Value(i))
			}
		}
	case *array.Decimal128:
		for i := 0; i < length; i++ {
			if !ok(i) {
				continue
			}
			v := a.Value(i)
			if !n.has {
				n.minD, n.maxD, n.has = v, v, true
				continue
			}
			if v.Less(n.minD) {
				n.minD = v
			}
			if v.Greater(n.maxD) {
				n.maxD = v
			}
		}
	}
}

func addInts[T int8 | int16 | int32 | int64 | arrow.Date32 | arrow.Timestamp](n *statsNode, vals []T, ok func(int) bool) {
	for i, v := range vals {
		if !ok(i) {
			continue
		}
		x := int64(v)
		if !n.has {
			n.minI, n.maxI, n.has = x, x, true
			continue
		}
		n.minI = min(n.minI, x)
		n.maxI = max(n.maxI, x)
	}
}

func addFloats[T float32 | float64](n *statsNode, vals []T, ok func(int) bool) {
	for i, v := range vals {
		if !ok(i) {
			continue
		}
		x := float64(v)
		if math.IsNaN(x) {
			// NaN is unordered and matches no range predicate; leaving it out keeps the
			// bounds useful for the values that can match.
			continue
		}
		if math.IsInf(x, 0) {
			n.broken = true // JSON has no Infinity
		}
		if !n.has {
			n.minF, n.maxF, n.has = x, x, true
			continue
		}
		n.minF = min(n.minF, x)
		n.maxF = max(n.maxF, x)
	}
}

func (n *statsNode) addString(s string) {
	if !n.has {
		n.minS, n.maxS, n.has = strings.Clone(s), strings.Clone(s), true
		return
	}
	if s < n.minS {
		n.minS = strings.Clone(s)
	}
	if s > n.maxS {
		n.maxS = strings.Clone(s)
	}
}

// truncateMin cuts s to the prefix length; a prefix sorts before the string, so it stays a
// lower bound.
func truncateMin(s string) string {
	i, count := 0, 0
	for i < len(s) && count < statsStringPrefix {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	return s[:i]
}

// truncateMax cuts s to the prefix length and appends a tie-breaker character that sorts
// after the character that was cut off, so the result stays an upper bound: 0x7F when the
// cut character is below it, U+10FFFF otherwise. U+10FFFF cannot beat itself, so the cut
// moves past such characters; ok=false (omit the max) when no cut point is found within
// statsMaxCutSearch characters.
func truncateMax(s string) (string, bool) {
	if utf8.RuneCountInString(s) <= statsStringPrefix {
		return s, true
	}
	i, count := 0, 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if count >= statsStringPrefix {
			if count > statsMaxCutSearch {
				return "", false
			}
			if r < 0x7F {
				return s[:i] + "\x7F", true
			}
			if r < utf8.MaxRune {
				return s[:i] + string(utf8.MaxRune), true
			}
		}
		i += size
		count++
	}
	return s, true
}

// json renders the stats string: {"numRecords":N,"minValues":{…},"maxValues":{…},"nullCount":{…}}.
func (c *statsCollector) json() string {
	var b bytes.Buffer
	b.WriteString(`{"numRecords":`)
	b.WriteString(strconv.FormatInt(c.numRecords, 10))
	b.WriteString(`,"minValues":`)
	writeBounds(&b, c.cols, true)
	b.WriteString(`,"maxValues":`)
	writeBounds(&b, c.cols, false)
	b.WriteString(`,"nullCount":`)
	writeNullCounts(&b, c.cols)
	b.WriteByte('}')
	return b.String()
}

func writeKey(b *bytes.Buffer, first *bool, name string) {
	if !*first {
		b.WriteByte(',')
	}
	*first = false
	writeJSONString(b, name)
	b.WriteByte(':')
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode appends a newline
}

func writeBounds(b *bytes.Buffer, nodes []*statsNode, isMin bool) {
	b.WriteByte('{')
	first := true
	for _, n := range nodes {
		if n.isStruct {
			if !n.hasBounds() {
				continue
			}
			writeKey(b, &first, n.name)
			writeBounds(b, n.children, isMin)
			continue
		}
		v, ok := n.bound(isMin)
		if !ok {
			continue
		}
		writeKey(b, &first, n.name)
		b.WriteString(v)
	}
	b.WriteByte('}')
}

func (n *statsNode) hasBounds() bool {
	if !n.isStruct {
		_, ok := n.bound(true)
		return ok
	}
	for _, c := range n.children {
		if c.hasBounds() {
			return true
		}
	}
	return false
}

// bound renders the min (or max) as a JSON value; ok=false when the column has none.
func (n *statsNode) bound(isMin bool) (string, bool) {
	if !n.has || n.broken {
		return "", false
	}
	pick := func(lo, hi int64) int64 {
		if isMin {
			return lo
		}
		return hi
	}
	switch n.kind {
	case kindInt:
		return strconv.FormatInt(pick(n.minI, n.maxI), 10), true
	case kindFloat32, kindFloat64:
		v := n.maxF
		if isMin {
			v = n.minF
		}
		bits := 64
		if n.kind == kindFloat32 {
			bits = 32
		}
		s := strconv.FormatFloat(v, 'g', -1, bits)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0"
		}
		return s, true
	case kindDecimal:
		if isMin {
			return n.minD.ToString(n.scale), true
		}
		return n.maxD.ToString(n.scale), true
	case kindDate:
		return `"` + time.Unix(pick(n.minI, n.maxI)*86400, 0).UTC().Format(dateLayout) + `"`, true
	case kindTimestamp:
		// Delta keeps milliseconds. The min is truncated down; the max is rounded up when
		// it has a sub-millisecond part, so both stay bounds of the true values.
		us := toMicros(pick(n.minI, n.maxI), n.unit)
		ms := floorDiv(us, 1000)
		if !isMin && us%1000 != 0 {
			ms++
		}
		t := time.UnixMilli(ms).UTC()
		if n.ntz {
			return `"` + t.Format(statsNTZLayout) + `"`, true
		}
		return `"` + t.Format(statsTimeLayout) + `"`, true
	case kindString:
		var s string
		if isMin {
			s = truncateMin(n.minS)
		} else {
			var ok bool
			if s, ok = truncateMax(n.maxS); !ok {
				return "", false
			}
		}
		if !utf8.ValidString(s) {
			return "", false // JSON would replace bytes and break the bound
		}
		var b bytes.Buffer
		writeJSONString(&b, s)
		return b.String(), true
	}
	return "", false
}

func writeNullCounts(b *bytes.Buffer, nodes []*statsNode) {
	b.WriteByte('{')
	first := true
	for _, n := range nodes {
		writeKey(b, &first, n.name)
		if n.isStruct {
			writeNullCounts(b, n.children)
			continue
		}
		b.WriteString(strconv.FormatInt(n.nullCount, 10))
	}
	b.WriteByte('}')
}
