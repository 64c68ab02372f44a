package connector

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// This file turns parsed fields into Arrow columns. Conversion runs column by column over
// a chunk of records, so each column's type is switched on once per chunk, and values are
// written straight into the slices that become the batch's buffers: no value is boxed or
// copied into a Go string on the way.

// colBuf is one column of the batch being built. Its slices become the batch's buffers
// when the batch is emitted; the next batch gets new ones.
type colBuf struct {
	valid []byte // validity bitmap
	nulls int
	i8    []int8
	i16   []int16
	i32   []int32 // also dates
	i64   []int64 // also timestamps
	f32   []float32
	f64   []float64
	dec   []decimal128.Num
	bits  []byte  // boolean values
	offs  []int32 // string and binary offsets, BatchRows+1
	data  []byte
	days  dayCache // dates and timestamps
}

func newColBuf(k colKind, dataHint int) colBuf {
	b := colBuf{valid: make([]byte, BatchRows/8)}
	switch k {
	case kindBool:
		b.bits = make([]byte, BatchRows/8)
	case kindInt8:
		b.i8 = make([]int8, BatchRows)
	case kindInt16:
		b.i16 = make([]int16, BatchRows)
	case kindInt32, kindDate:
		b.i32 = make([]int32, BatchRows)
	case kindInt64, kindTimestamp:
		b.i64 = make([]int64, BatchRows)
	case kindFloat32:
		b.f32 = make([]float32, BatchRows)
	case kindFloat64:
		b.f64 = make([]float64, BatchRows)
	case kindDecimal:
		b.dec = make([]decimal128.Num, BatchRows)
	case kindString, kindBinary:
		b.offs = make([]int32, BatchRows+1)
		b.data = make([]byte, 0, dataHint)
	}
	return b
}

// array hands the first n rows to an Arrow array of type dt.
func (b *colBuf) array(dt arrow.DataType, k colKind, n int) arrow.Array {
	var validity *memory.Buffer
	if b.nulls > 0 {
		validity = memory.NewBufferBytes(b.valid[:(n+7)/8])
	}
	var vals []byte
	switch k {
	case kindBool:
		vals = b.bits[:(n+7)/8]
	case kindInt8:
		vals = arrow.Int8Traits.CastToBytes(b.i8[:n])
	case kindInt16:
		vals = arrow.Int16Traits.CastToBytes(b.i16[:n])
	case kindInt32, kindDate:
		vals = arrow.Int32Traits.CastToBytes(b.i32[:n])
	case kindInt64, kindTimestamp:
		vals = arrow.Int64Traits.CastToBytes(b.i64[:n])
	case kindFloat32:
		vals = arrow.Float32Traits.CastToBytes(b.f32[:n])
	case kindFloat64:
		vals = arrow.Float64Traits.CastToBytes(b.f64[:n])
	case kindDecimal:
		vals = arrow.Decimal128Traits.CastToBytes(b.dec[:n])
	case kindString, kindBinary:
		offs := memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(b.offs[:n+1]))
		d := array.NewData(dt, n, []*memory.Buffer{validity, offs, memory.NewBufferBytes(b.data)}, nil, b.nulls, 0)
		defer d.Release()
		return array.MakeFromData(d)
	}
	d := array.NewData(dt, n, []*memory.Buffer{validity, memory.NewBufferBytes(vals)}, nil, b.nulls, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// convert appends the chunk's records to the batch being built.
func (r *csvSource) convert(ch *chunk) error {
	for c := range r.cols {
		if err := r.convertColumn(ch, c); err != nil {
			return err
		}
	}
	r.nrows += ch.records()
	return nil
}

func (r *csvSource) convertColumn(ch *chunk, c int) error {
	col, b := &r.cols[c], &r.bufs[c]
	buf, nc, base := r.sc.buf, len(r.cols), r.nrows
	n := ch.records()
	if col.isString() {
		return r.convertStrings(ch, c)
	}
	for i := range n {
		sp := ch.spans[i*nc+c]
		v := ch.bytes(buf, sp)
		if len(v) == 0 || r.cfg.hasNull && !sp.quoted() && string(v) == r.cfg.null {
			b.nulls++
			continue
		}
		v = trimBlank(v)
		j := base + i
		ok := true
		why := badSyntax
		switch col.kind {
		case kindInt8, kindInt16, kindInt32, kindInt64:
			var x int64
			x, ok = parseInt(v)
			if ok && (x < col.min || x > col.max) {
				ok, why = false, badRange
			}
			switch col.kind {
			case kindInt8:
				b.i8[j] = int8(x)
			case kindInt16:
				b.i16[j] = int16(x)
			case kindInt32:
				b.i32[j] = int32(x)
			default:
				b.i64[j] = x
			}
		case kindFloat64:
			b.f64[j], ok = parseFloat(v, 64)
		case kindFloat32:
			var x float64
			x, ok = parseFloat(v, 32)
			b.f32[j] = float32(x)
		case kindDecimal:
			var x decimal128.Num
			x, ok = parseDecimal(v, col.prec, col.scale)
			if !ok && isFloatSyntax(v) {
				why = badFit
			}
			if ok && col.mysql == "bigint unsigned" && (x.Sign() < 0 || x.HighBits() != 0) {
				ok, why = false, badRange
			}
			b.dec[j] = x
		case kindBool:
			var x bool
			x, ok = parseBool(v, col.anyBool)
			if x {
				b.bits[j>>3] |= 1 << (j & 7)
			}
		case kindDate:
			b.i32[j], ok = parseDate(v, &b.days)
		case kindTimestamp:
			b.i64[j], _, ok = parseTimestamp(v, &b.days)
		}
		if !ok {
			if err := r.bad(col, ch.lines[i], v, why.String()+col.sqlType); err != nil {
				return err
			}
			b.nulls++
			continue
		}
		b.valid[j>>3] |= 1 << (j & 7)
	}
	return nil
}

// badReason says why a value does not fit; it is a code so the conversion loop builds no
// message until one is needed.
type badReason uint8

const (
	badSyntax badReason = iota
	badRange
	badFit
)

func (w badReason) String() string {
	switch w {
	case badRange:
		return "is out of range for "
	case badFit:
		return "has too many digits for "
	}
	return "is not a valid "
}

// float64pow10 holds the powers of ten a float64 represents exactly.
var float64pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat parses a number. Plain decimals with at most 15 significant digits take
// Clinger's fast path: the digits as an integer, exactly representable, divided by an
// exactly representable power of ten gives the correctly rounded result. Anything else
// goes to strconv (without copying b to a string on the heap).
func parseFloat(b []byte, bits int) (float64, bool) {
	if bits == 64 {
		i, neg := 0, false
		if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
			neg, i = b[0] == '-', 1
		}
		var m uint64
		nd, frac, dot := 0, 0, false
		for ; i < len(b); i++ {
			c := b[i]
			if c-'0' <= 9 {
				m = m*10 + uint64(c-'0')
				nd++
				if dot {
					frac++
				}
				continue
			}
			if c == '.' && !dot {
				dot = true
				continue
			}
			break
		}
		if i == len(b) && nd > 0 && nd <= 15 {
			f := float64(m) / float64pow10[frac]
			if neg {
				f = -f
			}
			return f, true
		}
	}
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), bits)
	return f, err == nil
}

func (r *csvSource) convertStrings(ch *chunk, c int) error {
	col, b := &r.cols[c], &r.bufs[c]
	buf, nc, base := r.sc.buf, len(r.cols), r.nrows
	n := ch.records()
	for i := range n {
		sp := ch.spans[i*nc+c]
		v := ch.bytes(buf, sp)
		j := base + i
		if !sp.quoted() && (r.cfg.hasNull && string(v) == r.cfg.null || !r.cfg.hasNull && len(v) == 0) {
			b.nulls++
			b.offs[j+1] = b.offs[j]
			continue
		}
		why := ""
		switch {
		case col.kind == kindString && !ch.ascii && !utf8.Valid(v):
			why = "is not valid UTF-8 text; convert the file to UTF-8, or read the column as VARBINARY or BLOB"
		case col.maxChars > 0 && len(v) > col.maxChars && utf8.RuneCount(v) > col.maxChars:
			why = fmt.Sprintf("is longer than %s (%d characters)", col.sqlType, utf8.RuneCount(v))
		case col.maxBytes > 0 && len(v) > col.maxBytes:
			why = fmt.Sprintf("is longer than %s allows (%d bytes)", col.sqlType, len(v))
		case col.json && !json.Valid(v):
			why = "is not a valid JSON document"
		}
		if why != "" {
			if err := r.bad(col, ch.lines[i], v, why); err != nil {
				return err
			}
			b.nulls++
			b.offs[j+1] = b.offs[j]
			continue
		}
		b.data = append(b.data, v...)
		if len(b.data) > 1<<31-1 {
			return fmt.Errorf("%s line %d, column %q: more than 2 GB of text in %d rows; the rows are too long to read", r.sc.name, ch.lines[i], col.name, j+1)
		}
		b.offs[j+1] = int32(len(b.data))
		b.valid[j>>3] |= 1 << (j & 7)
	}
	return nil
}

// bad reports a value that does not fit its column, or returns nil to read it as NULL
// (on_error=null).
func (r *csvSource) bad(col *csvColumn, line int64, v []byte, why string) error {
	if r.cfg.nullOnError {
		return nil
	}
	shown := string(v)
	if utf8.RuneCountInString(shown) > 40 {
		shown = string([]rune(shown)[:40]) + "…"
	}
	fix := "give the column types with columns='name TYPE, …' or set on_error=null to read such values as NULL"
	if col.inferred {
		fix = fmt.Sprintf("the type was inferred from the first %d rows; %s", r.cfg.sampleRows, fix)
	}
	return fmt.Errorf("%s line %d, column %q: %q %s; %s", r.sc.name, line, col.name, shown, why, fix)
}

// pow10 holds the powers of ten that fit in a uint64, 10^0 … 10^19.
var pow10 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// parseDecimal reads [+-]digits[.digits] as an unscaled integer at the given scale,
// rounding half away from zero past it (as MySQL does). ok is false for other syntax and
// for values with more than prec digits at that scale.
func parseDecimal(b []byte, prec, scale int32) (decimal128.Num, bool) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg, i = b[0] == '-', 1
	}
	for i < len(b)-1 && b[i] == '0' && b[i+1]-'0' <= 9 {
		i++ // leading zeros
	}
	is := i
	for i < len(b) && b[i]-'0' <= 9 {
		i++
	}
	intPart := b[is:i]
	var frac []byte
	if i < len(b) && b[i] == '.' {
		fs := i + 1
		for i = fs; i < len(b) && b[i]-'0' <= 9; i++ {
		}
		frac = b[fs:i]
	}
	if i != len(b) || len(intPart)+len(frac) == 0 {
		return decimal128.Num{}, false
	}
	if len(intPart) == 1 && intPart[0] == '0' {
		intPart = nil
	}
	if int32(len(intPart)) > prec-scale {
		return decimal128.Num{}, false
	}
	kept := frac[:min(len(frac), int(scale))]
	roundUp := len(frac) > int(scale) && frac[scale] >= '5'
	var n decimal128.Num
	if len(intPart)+int(scale) <= 18 {
		var u uint64
		for _, c := range intPart {
			u = u*10 + uint64(c-'0')
		}
		for _, c := range kept {
			u = u*10 + uint64(c-'0')
		}
		u *= pow10[int(scale)-len(kept)]
		if roundUp {
			u++
		}
		if prec <= 18 && u >= pow10[prec] {
			return decimal128.Num{}, false
		}
		n = decimal128.FromU64(u)
	} else {
		ten := decimal128.FromU64(10)
		for _, c := range intPart {
			n = n.Mul(ten).Add(decimal128.FromU64(uint64(c - '0')))
		}
		for _, c := range kept {
			n = n.Mul(ten).Add(decimal128.FromU64(uint64(c - '0')))
		}
		for range int(scale) - len(kept) {
			n = n.Mul(ten)
		}
		if roundUp {
			n = n.Add(decimal128.FromU64(1))
		}
		if !n.FitsInPrecision(prec) {
			return decimal128.Num{}, false
		}
	}
	if neg {
		n = n.Negate()
	}
	return n, true
}
