package sql

// Field conversion for the LOAD DATA fast path: each column parses its text straight into
// its Arrow builder with the MySQL type's rules (range, scale, length, calendar).

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	"github.com/shopspring/decimal"
)

// bad handles a value the column rejects: an error in strict mode; with IGNORE (and LOCAL) a
// warning, and either the closest valid value (as GMS's INSERT IGNORE does for numbers and
// strings) or the row is skipped.
func (l *loadIter) bad(ctx *gms.Context, ve *valErr, cl *colLoad, f []byte, line int64, c *cell) error {
	ve.msg = fmt.Sprintf("%s for column '%s' at line %d", ve.msg, cl.col.Name, line)
	if !l.ignore || ve.fatal {
		return ve.sqlError()
	}
	ctx.Warn(ve.code, "%s", ve.msg)
	if ve.fix != nil {
		*c = cell{set: true}
		ve.fix(c)
		ve.skip = false
		return nil
	}
	ve.skip = true
	return nil
}

type valErr struct {
	code  int
	state string
	msg   string
	fix   func(*cell) // IGNORE: the value stored instead; nil = skip the row
	skip  bool
	fatal bool // even with IGNORE (invalid JSON, as in MySQL and GMS)
}

func (v *valErr) sqlError() error {
	st := v.state
	if st == "" {
		st = "22001"
		if v.code == mysql.ERTruncatedWrongValueForField {
			st = "HY000"
		} else if v.code == mysql.ERWarnDataOutOfRange {
			st = "22003"
		}
	}
	return mysql.NewSQLError(v.code, st, "%s", v.msg)
}

func incorrect(kind string, f []byte, fix func(*cell)) *valErr {
	return &valErr{code: mysql.ERTruncatedWrongValueForField, msg: fmt.Sprintf("Incorrect %s value: '%s'", kind, clip(f)), fix: fix}
}

func outOfRange(f []byte, fix func(*cell)) *valErr {
	return &valErr{code: mysql.ERWarnDataOutOfRange, msg: fmt.Sprintf("Out of range value '%s'", clip(f)), fix: fix}
}

func clip(f []byte) string {
	if len(f) > 64 {
		return string(f[:64]) + "…"
	}
	return string(f)
}

// cell is one converted field, typed by its column's kind; v holds a GMS value instead
// (defaults), appended through the generic appender.
type cell struct {
	set   bool // a field of the record maps to the column
	null  bool
	boxed bool
	v     any
	i     int64
	u     uint64
	f     float64
	s     []byte
	str   string
	d     decimal128.Num
}

type loadKind int

const (
	kInt loadKind = iota
	kUint64
	kFloat32
	kFloat64
	kDecimal
	kString
	kDate
	kDatetime
	kEnum
	kSet
	kJSON
)

// colLoad converts the fields of one column.
type colLoad struct {
	ord  int
	col  *gms.Column
	kind loadKind
	text bool // empty fields are empty strings, not the default

	min, max int64 // kInt
	prec     uint8 // kDecimal
	scale    int32
	maxChars int64 // kString; 0 = unchecked
	dtPrec   int   // kDatetime
	tmin     time.Time
	tmax     time.Time
	enum     gms.EnumType
	set      gms.SetType

	def    any
	hasDef bool

	fb      array.Builder
	app     func(c *cell)
	generic func(any) error
	key     func(b []byte, c *cell) []byte
}

func (cl *colLoad) setDefault(c *cell) {
	if !cl.hasDef || cl.def == nil {
		c.null = true
		return
	}
	c.boxed, c.v = true, cl.def
}

func (cl *colLoad) appendCell(c *cell) error {
	switch {
	case c.null:
		cl.fb.AppendNull()
	case c.boxed:
		return cl.generic(c.v)
	default:
		cl.app(c)
	}
	return nil
}

// text2 renders a key cell for the duplicate-entry message.
func (cl *colLoad) text2(c *cell) string {
	switch {
	case c.null:
		return "NULL"
	case c.boxed:
		return fmt.Sprint(c.v)
	}
	switch cl.kind {
	case kInt:
		return strconv.FormatInt(c.i, 10)
	case kUint64:
		return strconv.FormatUint(c.u, 10)
	case kFloat32, kFloat64:
		return strconv.FormatFloat(c.f, 'g', -1, 64)
	case kString, kJSON:
		return string(c.s)
	case kEnum, kSet:
		return c.str
	case kDecimal:
		return decimal.NewFromBigInt(c.d.BigInt(), -cl.scale).String()
	case kDate:
		return time.UnixMicro(c.i).UTC().Format("2006-01-02")
	case kDatetime:
		return time.UnixMicro(c.i).UTC().Format("2006-01-02 15:04:05.999999")
	}
	return "?"
}

func newColLoad(ctx *gms.Context, ord int, c *gms.Column, at arrow.DataType) (*colLoad, bool) {
	cl := &colLoad{ord: ord, col: c}
	t := c.Type
	switch t.Type() {
	case sqltypes.Int8:
		cl.kind, cl.min, cl.max = kInt, math.MinInt8, math.MaxInt8
	case sqltypes.Uint8:
		cl.kind, cl.min, cl.max = kInt, 0, math.MaxUint8
	case sqltypes.Int16:
		cl.kind, cl.min, cl.max = kInt, math.MinInt16, math.MaxInt16
	case sqltypes.Uint16:
		cl.kind, cl.min, cl.max = kInt, 0, math.MaxUint16
	case sqltypes.Int24:
		cl.kind, cl.min, cl.max = kInt, -1<<23, 1<<23-1
	case sqltypes.Uint24:
		cl.kind, cl.min, cl.max = kInt, 0, 1<<24-1
	case sqltypes.Int32:
		cl.kind, cl.min, cl.max = kInt, math.MinInt32, math.MaxInt32
	case sqltypes.Uint32:
		cl.kind, cl.min, cl.max = kInt, 0, math.MaxUint32
	case sqltypes.Int64:
		cl.kind, cl.min, cl.max = kInt, math.MinInt64, math.MaxInt64
	case sqltypes.Uint64:
		cl.kind = kUint64
	case sqltypes.Float32:
		cl.kind = kFloat32
	case sqltypes.Float64:
		cl.kind = kFloat64
	case sqltypes.Decimal:
		dt := t.(gms.DecimalType)
		cl.kind, cl.prec, cl.scale = kDecimal, dt.Precision(), int32(dt.Scale())
	case sqltypes.Char, sqltypes.VarChar, sqltypes.Text:
		st, ok := t.(gms.StringType)
		if !ok || types.IsBinaryType(t) {
			return nil, false
		}
		cl.kind, cl.text = kString, true
		if n := st.MaxCharacterLength(); n > 0 {
			cl.maxChars = n
		}
	case sqltypes.Date, sqltypes.Datetime, sqltypes.Timestamp:
		dt, ok := t.(gms.DatetimeType)
		if !ok {
			return nil, false
		}
		cl.kind, cl.tmin, cl.tmax = kDatetime, dt.MinimumTime(), dt.MaximumTime()
		cl.dtPrec = dt.Precision()
		if t.Type() == sqltypes.Date {
			cl.kind = kDate
		}
	case sqltypes.Enum:
		cl.kind, cl.enum = kEnum, t.(gms.EnumType)
	case sqltypes.Set:
		cl.kind, cl.set = kSet, t.(gms.SetType)
	case sqltypes.TypeJSON:
		cl.kind = kJSON
	default:
		return nil, false
	}
	// The Arrow type must be the one the column's appender expects.
	want := map[loadKind][]arrow.Type{
		kInt:      {arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.BOOL},
		kUint64:   {arrow.DECIMAL128},
		kFloat32:  {arrow.FLOAT32},
		kFloat64:  {arrow.FLOAT64},
		kDecimal:  {arrow.DECIMAL128},
		kString:   {arrow.STRING},
		kDate:     {arrow.DATE32},
		kDatetime: {arrow.TIMESTAMP},
		kEnum:     {arrow.STRING},
		kSet:      {arrow.STRING},
		kJSON:     {arrow.STRING},
	}[cl.kind]
	okType := false
	for _, w := range want {
		okType = okType || at.ID() == w
	}
	if !okType {
		return nil, false
	}
	if ts, ok := at.(*arrow.TimestampType); ok && ts.Unit != arrow.Microsecond {
		return nil, false
	}
	if d, ok := at.(*arrow.Decimal128Type); ok && (cl.kind == kDecimal && d.Scale != cl.scale || cl.kind == kUint64 && d.Scale != 0) {
		return nil, false
	}
	cl.key = keyEncoder(cl)
	return cl, true
}

// keyEncoder writes a cell the way appendKeyValue writes the GMS value a scan of the column
// returns, so keys from a load match keys read back from Parquet.
func keyEncoder(cl *colLoad) func([]byte, *cell) []byte {
	boxed := func(b []byte, c *cell) ([]byte, bool) {
		if c.null {
			return append(b, 0), true
		}
		if c.boxed {
			return appendKeyValue(b, c.v), true
		}
		return b, false
	}
	switch cl.kind {
	case kInt:
		return func(b []byte, c *cell) []byte {
			if out, ok := boxed(b, c); ok {
				return out
			}
			return binary.BigEndian.AppendUint64(append(b, 1), uint64(c.i))
		}
	case kUint64:
		return func(b []byte, c *cell) []byte {
			if out, ok := boxed(b, c); ok {
				return out
			}
			return binary.BigEndian.AppendUint64(append(b, 2), c.u)
		}
	case kFloat32, kFloat64:
		return func(b []byte, c *cell) []byte {
			if out, ok := boxed(b, c); ok {
				return out
			}
			return binary.BigEndian.AppendUint64(append(b, 3), math.Float64bits(c.f))
		}
	case kString:
		return func(b []byte, c *cell) []byte {
			if out, ok := boxed(b, c); ok {
				return out
			}
			b = binary.AppendUvarint(append(b, 4), uint64(len(c.s)))
			return append(b, c.s...)
		}
	case kDate, kDatetime:
		return func(b []byte, c *cell) []byte {
			if out, ok := boxed(b, c); ok {
				return out
			}
			return binary.BigEndian.AppendUint64(append(b, 6), uint64(c.i))
		}
	case kDecimal:
		scale := cl.scale
		return func(b []byte, c *cell) []byte {
			if out, ok := boxed(b, c); ok {
				return out
			}
			return appendKeyValue(b, decimal.NewFromBigInt(c.d.BigInt(), -scale))
		}
	case kEnum:
		return func(b []byte, c *cell) []byte {
			if out, ok := boxed(b, c); ok {
				return out
			}
			return binary.BigEndian.AppendUint64(append(b, 1), uint64(c.i))
		}
	}
	return nil // SET and JSON keys: left to GMS
}

// bind attaches the column to its builder in the statement's record builder.
func (cl *colLoad) bind(fb array.Builder) error {
	cl.fb = fb
	g, err := appenderFor(fb, cl.col.Type)
	if err != nil {
		return err
	}
	cl.generic = g
	switch b := fb.(type) {
	case *array.Int8Builder:
		cl.app = func(c *cell) { b.Append(int8(c.i)) }
	case *array.Int16Builder:
		cl.app = func(c *cell) { b.Append(int16(c.i)) }
	case *array.Int32Builder:
		cl.app = func(c *cell) { b.Append(int32(c.i)) }
	case *array.Int64Builder:
		cl.app = func(c *cell) { b.Append(c.i) }
	case *array.BooleanBuilder:
		cl.app = func(c *cell) { b.Append(c.i != 0) }
	case *array.Float32Builder:
		cl.app = func(c *cell) { b.Append(float32(c.f)) }
	case *array.Float64Builder:
		cl.app = func(c *cell) { b.Append(c.f) }
	case *array.Decimal128Builder:
		if cl.kind == kUint64 {
			cl.app = func(c *cell) { b.Append(decimal128.FromU64(c.u)) }
		} else {
			cl.app = func(c *cell) { b.Append(c.d) }
		}
	case *array.StringBuilder:
		if cl.kind == kString || cl.kind == kJSON {
			cl.app = func(c *cell) { b.BinaryBuilder.Append(c.s) }
		} else {
			cl.app = func(c *cell) { b.Append(c.str) }
		}
	case *array.Date32Builder:
		cl.app = func(c *cell) { b.Append(arrow.Date32(c.i / (86400 * 1e6))) }
	case *array.TimestampBuilder:
		cl.app = func(c *cell) { b.Append(arrow.Timestamp(c.i)) }
	default:
		return fmt.Errorf("LOAD DATA: no loader for Arrow type %s", fb.Type())
	}
	return nil
}

func ustr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseDigits reads an optionally signed decimal integer; ok=false if b is not one,
// overflow if it does not fit an int64.
func parseDigits(b []byte) (v int64, ok, overflow bool) {
	if len(b) == 0 {
		return 0, false, false
	}
	neg := false
	switch b[0] {
	case '-':
		neg = true
		b = b[1:]
	case '+':
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false, false
	}
	var u uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false, false
		}
		if u > (math.MaxUint64-9)/10 {
			overflow = true
			continue
		}
		u = u*10 + uint64(ch-'0')
	}
	if overflow {
		return 0, true, true
	}
	if neg {
		if u > 1<<63 {
			return math.MinInt64, true, true
		}
		return -int64(u), true, false
	}
	if u > math.MaxInt64 {
		return math.MaxInt64, true, true
	}
	return int64(u), true, false
}

func (cl *colLoad) parse(raw []byte, c *cell) *valErr {
	switch cl.kind {
	case kInt:
		f := trimSpace(raw)
		v, ok, over := parseDigits(f)
		if !ok {
			// MySQL accepts numbers with a fraction or exponent and rounds them.
			x, err := strconv.ParseFloat(ustr(f), 64)
			if err != nil && !isRangeErr(err) || math.IsNaN(x) || math.IsInf(x, 0) && err == nil {
				return incorrect("integer", raw, func(c *cell) { c.i = 0 })
			}
			x = math.Round(x)
			if x < float64(cl.min) || x > float64(cl.max) {
				lo, hi := cl.min, cl.max
				return outOfRange(raw, func(c *cell) {
					if x < 0 {
						c.i = lo
					} else {
						c.i = hi
					}
				})
			}
			c.i = int64(x)
			return nil
		}
		if over || v < cl.min || v > cl.max {
			neg := len(f) > 0 && f[0] == '-'
			lo, hi := cl.min, cl.max
			return outOfRange(raw, func(c *cell) {
				if neg {
					c.i = lo
				} else {
					c.i = hi
				}
			})
		}
		c.i = v
	case kUint64:
		f := trimSpace(raw)
		u, err := strconv.ParseUint(ustr(f), 10, 64)
		if err != nil {
			if isRangeErr(err) {
				return outOfRange(raw, func(c *cell) { c.u = math.MaxUint64 })
			}
			if v, ok, _ := parseDigits(f); ok && v < 0 {
				return outOfRange(raw, func(c *cell) { c.u = 0 })
			}
			x, ferr := strconv.ParseFloat(ustr(f), 64)
			if ferr != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return incorrect("integer", raw, func(c *cell) { c.u = 0 })
			}
			x = math.Round(x)
			if x < 0 || x >= math.MaxUint64 {
				return outOfRange(raw, func(c *cell) {
					if x < 0 {
						c.u = 0
					} else {
						c.u = math.MaxUint64
					}
				})
			}
			u = uint64(x)
		}
		c.u = u
	case kFloat32, kFloat64:
		f := trimSpace(raw)
		x, err := strconv.ParseFloat(ustr(f), 64)
		if err != nil {
			if isRangeErr(err) {
				// ±Inf for overflow, 0 for underflow.
				return outOfRange(raw, func(c *cell) { c.f = math.Max(-math.MaxFloat64, math.Min(math.MaxFloat64, x)) })
			}
			return incorrect("double", raw, func(c *cell) { c.f = 0 })
		}
		if math.IsNaN(x) || math.IsInf(x, 0) { // "nan", "inf": not numbers in MySQL
			return incorrect("double", raw, func(c *cell) { c.f = 0 })
		}
		if cl.kind == kFloat32 && math.Abs(x) > math.MaxFloat32 {
			return outOfRange(raw, func(c *cell) { c.f = math.Copysign(math.MaxFloat32, x) })
		}
		if cl.kind == kFloat32 {
			x = float64(float32(x))
		}
		c.f = x
	case kDecimal:
		return cl.parseDecimal(raw, c)
	case kString:
		if cl.maxChars > 0 && int64(len(raw)) > cl.maxChars {
			if n := int64(utf8.RuneCount(raw)); n > cl.maxChars {
				max := cl.maxChars
				return &valErr{code: mysql.ERDataTooLong, msg: fmt.Sprintf("Data too long (%d characters, at most %d)", n, max),
					fix: func(c *cell) { c.s = truncateRunes(raw, max) }}
			}
		}
		c.s = raw
	case kDate:
		us, ok := parseDateTime(trimSpace(raw), 0)
		if !ok {
			return incorrect("date", raw, nil)
		}
		// A DATE keeps the day.
		us -= floorMod(us, 86400*1e6)
		if us < cl.tmin.UnixMicro() || us > cl.tmax.UnixMicro() {
			return outOfRange(raw, nil)
		}
		c.i = us
	case kDatetime:
		us, ok := parseDateTime(trimSpace(raw), cl.dtPrec)
		if !ok {
			return incorrect("datetime", raw, nil)
		}
		if us < cl.tmin.UnixMicro() || us > cl.tmax.UnixMicro() {
			return outOfRange(raw, nil)
		}
		c.i = us
	case kEnum:
		s := string(raw)
		idx := cl.enum.IndexOf(s)
		if idx < 0 {
			if v, ok, _ := parseDigits(trimSpace(raw)); ok && v >= 1 && v <= int64(cl.enum.NumberOfElements()) {
				idx = int(v)
			}
		}
		if idx < 0 {
			return incorrect("enum", raw, nil)
		}
		c.i = int64(idx)
		c.str, _ = cl.enum.At(idx)
	case kSet:
		v, _, err := cl.set.Convert(context.Background(), string(raw))
		if err != nil {
			return incorrect("set", raw, nil)
		}
		bits, _ := v.(uint64)
		s, err := cl.set.BitsToString(bits)
		if err != nil {
			return incorrect("set", raw, nil)
		}
		c.u, c.str = bits, s
	case kJSON:
		var x any
		if err := json.Unmarshal(raw, &x); err != nil {
			return &valErr{code: 3140, state: "22032", msg: fmt.Sprintf("Invalid JSON text: %q", clip(raw)), fatal: true}
		}
		out, err := json.Marshal(x)
		if err != nil {
			return &valErr{code: 3140, state: "22032", msg: fmt.Sprintf("Invalid JSON text: %v", err), fatal: true}
		}
		c.s = out
	}
	return nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func truncateRunes(b []byte, n int64) []byte {
	i := 0
	for k := int64(0); k < n && i < len(b); k++ {
		_, sz := utf8.DecodeRune(b[i:])
		i += sz
	}
	return b[:i]
}

var pow10 = func() [19]int64 {
	var p [19]int64
	p[0] = 1
	for i := 1; i < 19; i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// parseDecimal reads a decimal exactly, rounding half away from zero to the column's scale.
func (cl *colLoad) parseDecimal(raw []byte, c *cell) *valErr {
	f := trimSpace(raw)
	zero := func(c *cell) { c.d = decimal128.Num{} }
	neg := false
	b := f
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	dot := -1
	simple := len(b) > 0
	for i, ch := range b {
		if ch == '.' && dot < 0 {
			dot = i
			continue
		}
		if ch < '0' || ch > '9' {
			simple = false
			break
		}
	}
	intDigits := b
	var frac []byte
	if dot >= 0 {
		intDigits, frac = b[:dot], b[dot+1:]
	}
	if simple && len(intDigits)+len(frac) == 0 {
		simple = false
	}
	scale := int(cl.scale)
	if simple {
		for len(intDigits) > 0 && intDigits[0] == '0' {
			intDigits = intDigits[1:]
		}
		if len(intDigits) > int(cl.prec)-scale {
			return outOfRange(raw, zero)
		}
		if len(intDigits)+scale <= 17 {
			var u int64
			for _, ch := range intDigits {
				u = u*10 + int64(ch-'0')
			}
			for i := 0; i < scale; i++ {
				u *= 10
				if i < len(frac) {
					u += int64(frac[i] - '0')
				}
			}
			if len(frac) > scale && frac[scale] >= '5' {
				u++
			}
			if u >= pow10[int(cl.prec)] && int(cl.prec) < 19 {
				return outOfRange(raw, zero)
			}
			if neg {
				u = -u
			}
			c.d = decimal128.FromI64(u)
			return nil
		}
	}
	d, err := decimal.NewFromString(ustr(f))
	if err != nil {
		return incorrect("decimal", raw, zero)
	}
	d = d.Round(int32(scale))
	limit := decimal.New(1, int32(cl.prec)-int32(scale))
	if d.Abs().Cmp(limit) >= 0 {
		return outOfRange(raw, zero)
	}
	bi := d.Shift(int32(scale)).BigInt()
	if bi.BitLen() > 126 {
		return outOfRange(raw, zero)
	}
	c.d = decimal128.FromBigInt(new(big.Int).Set(bi))
	return nil
}

// parseDateTime reads YYYY-MM-DD[( |T)hh:mm:ss[.ffffff]] (also with one-digit month, day and
// time parts) as microseconds since the epoch, UTC, rounded to prec fractional digits.
func parseDateTime(b []byte, prec int) (int64, bool) {
	p := 0
	num := func(maxDigits int) (int, bool) {
		s := p
		v := 0
		for p < len(b) && p-s < maxDigits && b[p] >= '0' && b[p] <= '9' {
			v = v*10 + int(b[p]-'0')
			p++
		}
		return v, p > s
	}
	sep := func(ch byte) bool {
		if p < len(b) && b[p] == ch {
			p++
			return true
		}
		return false
	}
	y, ok := num(4)
	if !ok || p != 4 || !sep('-') {
		return 0, false
	}
	mo, ok := num(2)
	if !ok || !sep('-') {
		return 0, false
	}
	d, ok := num(2)
	if !ok {
		return 0, false
	}
	var h, mi, s, us int
	if p < len(b) {
		if b[p] != ' ' && b[p] != 'T' {
			return 0, false
		}
		p++
		if h, ok = num(2); !ok || !sep(':') {
			return 0, false
		}
		if mi, ok = num(2); !ok || !sep(':') {
			return 0, false
		}
		if s, ok = num(2); !ok {
			return 0, false
		}
		if sep('.') {
			st := p
			frac := 0
			for p < len(b) && b[p] >= '0' && b[p] <= '9' {
				if p-st < 7 {
					frac = frac*10 + int(b[p]-'0')
				}
				p++
			}
			n := p - st
			if n == 0 {
				return 0, false
			}
			if n > 7 {
				n = 7
			}
			// frac has n (≤7) digits; keep 7 to round to micro below.
			for ; n < 7; n++ {
				frac *= 10
			}
			us = frac // tenths of a microsecond
		}
		if p != len(b) {
			return 0, false
		}
	}
	if mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59 {
		return 0, false
	}
	if d > daysIn(mo, y) {
		return 0, false
	}
	// Round the fraction (tenths of µs) to prec digits, half up.
	unit := int(pow10[7-prec])
	us = (us + unit/2) / unit * unit / 10
	secs := daysFromCivil(y, mo, d)*86400 + int64(h*3600+mi*60+s)
	return secs*1e6 + int64(us), true
}

var monthDays = [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

func daysIn(m, y int) int {
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		return 29
	}
	return monthDays[m]
}

// daysFromCivil is the number of days from 1970-01-01 to y-m-d in the proleptic Gregorian
// calendar (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
