package connector

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// Text forms of Arrow values for CSV and JSON exports (see Export for the rules).

// appendScalarText appends the text of a non-null primitive value, unquoted.
func appendScalarText(b []byte, a arrow.Array, i int) []byte {
	switch a := a.(type) {
	case *array.Boolean:
		return strconv.AppendBool(b, a.Value(i))
	case *array.Int8:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int16:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int32:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int64:
		return strconv.AppendInt(b, a.Value(i), 10)
	case *array.Float32:
		return appendFloat(b, float64(a.Value(i)), 32)
	case *array.Float64:
		return appendFloat(b, a.Value(i), 64)
	case *array.Decimal128:
		return appendDecimal(b, a.Value(i), a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Date32:
		return appendDate(b, int64(a.Value(i)))
	case *array.Timestamp:
		us := int64(a.Value(i))
		switch a.DataType().(*arrow.TimestampType).Unit {
		case arrow.Second:
			us *= 1e6
		case arrow.Millisecond:
			us *= 1e3
		case arrow.Nanosecond:
			us = floorDiv(us, 1e3)
		}
		return appendTimestamp(b, us)
	case *array.Binary:
		const digits = "0123456789ABCDEF"
		for _, c := range a.Value(i) {
			b = append(b, digits[c>>4], digits[c&15])
		}
		return b
	case *array.String:
		return append(b, stringBytes(a, i)...)
	}
	return append(b, a.ValueStr(i)...)
}

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// appendFloat writes the shortest text that reads back as the same value, in plain
// notation between 1e-6 and 1e21 and in exponent notation outside (as JavaScript and
// encoding/json do), or NaN, Infinity, -Infinity.
func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' { // e-07 → e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendDecimal writes a decimal exactly, with scale digits after the point.
func appendDecimal(b []byte, n decimal128.Num, scale int32) []byte {
	hi, lo := n.HighBits(), n.LowBits()
	if !(hi == 0 && lo <= math.MaxInt64 || hi == -1 && lo > math.MaxInt64) || scale < 0 || scale > 18 {
		return append(b, n.ToString(scale)...)
	}
	v := int64(lo)
	abs := uint64(v)
	if v < 0 {
		b = append(b, '-')
		abs = uint64(-v)
	}
	var tmp [24]byte
	digits := strconv.AppendUint(tmp[:0], abs, 10)
	if scale == 0 {
		return append(b, digits...)
	}
	for len(digits) <= int(scale) { // at least one digit before the point
		digits = append([]byte{'0'}, digits...)
	}
	at := len(digits) - int(scale)
	b = append(b, digits[:at]...)
	b = append(b, '.')
	return append(b, digits[at:]...)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
// days_from_civil inverse).
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func appendDate(b []byte, days int64) []byte {
	y, m, d := civil(days)
	if y >= 0 && y <= 9999 {
		b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	} else {
		b = strconv.AppendInt(b, y, 10)
	}
	return append(b, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
}

func appendTimestamp(b []byte, us int64) []byte {
	days := floorDiv(us, 86400e6)
	b = appendDate(b, days)
	b = append(b, ' ')
	return appendTimeOfDay(b, us-days*86400e6)
}

// appendJSONString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONDocument embeds a stored JSON document, compacted (a JSON line must not break);
// text that is not valid JSON is written as a JSON string instead.
func appendJSONDocument(b, v []byte) []byte {
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, v); err == nil {
		return buf.Bytes()
	}
	return appendJSONString(b[:len(b):len(b)], v)
}

// appendJSONValue writes any value (nested ones included) as JSON.
func appendJSONValue(b []byte, a arrow.Array, i int) []byte {
	if a.IsNull(i) {
		return append(b, "null"...)
	}
	switch a := a.(type) {
	case *array.String:
		return appendJSONString(b, stringBytes(a, i))
	case *array.Binary, *array.Date32, *array.Timestamp:
		b = append(b, '"')
		b = appendScalarText(b, a, i)
		return append(b, '"')
	case *array.Float32:
		if !isFinite(float64(a.Value(i))) {
			return appendJSONString(b, appendScalarText(nil, a, i))
		}
	case *array.Float64:
		if !isFinite(a.Value(i)) {
			return appendJSONString(b, appendScalarText(nil, a, i))
		}
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		b = append(b, '{')
		for j := range st.NumFields() {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, []byte(st.Field(j).Name))
			b = append(b, ':')
			b = appendJSONValue(b, a.Field(j), i)
		}
		return append(b, '}')
	case *array.Map:
		entries := a.ListValues().(*array.Struct)
		keys, items := entries.Field(0), entries.Field(1)
		start, end := a.ValueOffsets(i)
		b = append(b, '{')
		for k := int(start); k < int(end); k++ {
			if k > int(start) {
				b = append(b, ',')
			}
			if ks, ok := keys.(*array.String); ok {
				b = appendJSONString(b, stringBytes(ks, k))
			} else {
				b = appendJSONString(b, appendJSONValue(nil, keys, k))
			}
			b = append(b, ':')
			b = appendJSONValue(b, items, k)
		}
		return append(b, '}')
	case *array.List:
		values := a.ListValues()
		start, end := a.ValueOffsets(i)
		b = append(b, '[')
		for k := int(start); k < int(end); k++ {
			if k > int(start) {
				b = append(b, ',')
			}
			b = appendJSONValue(b, values, k)
		}
		return append(b, ']')
	}
	return appendScalarText(b, a, i)
}
