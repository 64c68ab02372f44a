package sql

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/sqltypes"
	"github.com/shopspring/decimal"
)

// This file is the boundary between Arrow batches (how table/ moves data) and GMS rows
// ([]interface{} holding each MySQL type's Go value). Converters are chosen once per column
// so the per-value work is a type switch at most.

// valueReader reads row i of an Arrow column as the GMS value of the column's MySQL type.
type valueReader func(arr arrow.Array, i int) (any, error)

func readerFor(at arrow.DataType, t gms.Type) valueReader {
	natural := arrowNatural(at)
	qt := t.Type()
	switch {
	case qt == sqltypes.Enum || qt == sqltypes.Set || types.IsJSON(t) || qt == sqltypes.Uint64 || qt == sqltypes.Year:
		// Stored as string / decimal / short; let the type convert from the stored form.
		return func(arr arrow.Array, i int) (any, error) {
			if arr.IsNull(i) {
				return nil, nil
			}
			v, err := natural(arr, i)
			if err != nil {
				return nil, err
			}
			if d, ok := v.(decimal.Decimal); ok && qt == sqltypes.Uint64 {
				return d.BigInt().Uint64(), nil
			}
			if s, ok := v.(string); ok && types.IsJSON(t) {
				var x any
				if err := json.Unmarshal([]byte(s), &x); err != nil {
					return nil, fmt.Errorf("stored JSON is invalid: %w", err)
				}
				return types.JSONDocument{Val: x}, nil
			}
			out, _, err := t.Convert(context.Background(), v)
			return out, err
		}
	}
	want := gmsNaturalKind(t)
	return func(arr arrow.Array, i int) (any, error) {
		if arr.IsNull(i) {
			return nil, nil
		}
		v, err := natural(arr, i)
		if err != nil || want == nil {
			return v, err
		}
		return want(v), nil
	}
}

// gmsNaturalKind narrows or widens an Arrow-natural integer to the Go type GMS uses for t.
func gmsNaturalKind(t gms.Type) func(any) any {
	switch t.Type() {
	case sqltypes.Int8:
		return func(v any) any { return int8(toInt64(v)) }
	case sqltypes.Uint8:
		return func(v any) any { return uint8(toInt64(v)) }
	case sqltypes.Int16:
		return func(v any) any { return int16(toInt64(v)) }
	case sqltypes.Uint16:
		return func(v any) any { return uint16(toInt64(v)) }
	case sqltypes.Int24, sqltypes.Int32:
		return func(v any) any { return int32(toInt64(v)) }
	case sqltypes.Uint24, sqltypes.Uint32:
		return func(v any) any { return uint32(toInt64(v)) }
	case sqltypes.Int64:
		return func(v any) any { return toInt64(v) }
	case sqltypes.Float32:
		return func(v any) any {
			if f, ok := v.(float64); ok {
				return float32(f)
			}
			return v
		}
	case sqltypes.Float64:
		return func(v any) any {
			if f, ok := v.(float32); ok {
				return float64(f)
			}
			return v
		}
	case sqltypes.Char, sqltypes.VarChar, sqltypes.Text:
		return func(v any) any {
			if b, ok := v.([]byte); ok {
				return string(b)
			}
			return v
		}
	}
	return nil
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return int64(x)
	case bool:
		if x {
			return 1
		}
		return 0
	}
	return 0
}

// arrowNatural reads an Arrow value as the nearest plain Go value.
func arrowNatural(at arrow.DataType) valueReader {
	switch dt := at.(type) {
	case *arrow.BooleanType:
		return func(a arrow.Array, i int) (any, error) {
			if a.(*array.Boolean).Value(i) {
				return int8(1), nil
			}
			return int8(0), nil
		}
	case *arrow.Int8Type:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Int8).Value(i), nil }
	case *arrow.Int16Type:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Int16).Value(i), nil }
	case *arrow.Int32Type:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Int32).Value(i), nil }
	case *arrow.Int64Type:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Int64).Value(i), nil }
	case *arrow.Float32Type:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Float32).Value(i), nil }
	case *arrow.Float64Type:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Float64).Value(i), nil }
	case *arrow.StringType:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.String).Value(i), nil }
	case *arrow.LargeStringType:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.LargeString).Value(i), nil }
	case *arrow.BinaryType:
		return func(a arrow.Array, i int) (any, error) {
			return append([]byte(nil), a.(*array.Binary).Value(i)...), nil
		}
	case *arrow.Date32Type:
		return func(a arrow.Array, i int) (any, error) {
			return time.Unix(int64(a.(*array.Date32).Value(i))*86400, 0).UTC(), nil
		}
	case *arrow.TimestampType:
		unit := dt.Unit
		return func(a arrow.Array, i int) (any, error) {
			return a.(*array.Timestamp).Value(i).ToTime(unit).UTC(), nil
		}
	case *arrow.Decimal128Type:
		scale := dt.Scale
		return func(a arrow.Array, i int) (any, error) {
			n := a.(*array.Decimal128).Value(i)
			return decimal.NewFromBigInt(n.BigInt(), -scale), nil
		}
	}
	// Nested types (struct, list, map) are shown as JSON documents.
	return func(a arrow.Array, i int) (any, error) {
		b, err := json.Marshal(a.GetOneForMarshal(i))
		if err != nil {
			return nil, err
		}
		var x any
		if err := json.Unmarshal(b, &x); err != nil {
			return nil, err
		}
		return types.JSONDocument{Val: x}, nil
	}
}

// rowsToRecord builds one Arrow record (schema as) from GMS rows laid out as sch.
func rowsToRecord(rows []gms.Row, sch gms.Schema, as *arrow.Schema) (arrow.RecordBatch, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, as)
	defer b.Release()
	for c := range sch {
		fb := b.Field(c)
		fb.Reserve(len(rows))
		app, err := appenderFor(fb, sch[c].Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", sch[c].Name, err)
		}
		for _, r := range rows {
			if r[c] == nil {
				fb.AppendNull()
				continue
			}
			if err := app(r[c]); err != nil {
				return nil, fmt.Errorf("column %q value %v: %w", sch[c].Name, r[c], err)
			}
		}
	}
	return b.NewRecordBatch(), nil
}

func appenderFor(fb array.Builder, t gms.Type) (func(any) error, error) {
	switch b := fb.(type) {
	case *array.BooleanBuilder:
		return func(v any) error { b.Append(toInt64(v) != 0); return nil }, nil
	case *array.Int8Builder:
		return func(v any) error { b.Append(int8(toInt64(v))); return nil }, nil
	case *array.Int16Builder:
		return func(v any) error { b.Append(int16(toInt64(v))); return nil }, nil
	case *array.Int32Builder:
		return func(v any) error { b.Append(int32(toInt64(v))); return nil }, nil
	case *array.Int64Builder:
		return func(v any) error { b.Append(toInt64(v)); return nil }, nil
	case *array.Float32Builder:
		return func(v any) error {
			switch x := v.(type) {
			case float32:
				b.Append(x)
			case float64:
				b.Append(float32(x))
			default:
				return fmt.Errorf("unexpected %T for FLOAT", v)
			}
			return nil
		}, nil
	case *array.Float64Builder:
		return func(v any) error {
			switch x := v.(type) {
			case float32:
				b.Append(float64(x))
			case float64:
				b.Append(x)
			default:
				return fmt.Errorf("unexpected %T for DOUBLE", v)
			}
			return nil
		}, nil
	case *array.StringBuilder:
		return func(v any) error {
			s, err := storedString(t, v)
			if err != nil {
				return err
			}
			b.Append(s)
			return nil
		}, nil
	case *array.BinaryBuilder:
		return func(v any) error {
			switch x := v.(type) {
			case []byte:
				b.Append(x)
			case string:
				b.AppendString(x)
			default:
				return fmt.Errorf("unexpected %T for binary", v)
			}
			return nil
		}, nil
	case *array.Date32Builder:
		return func(v any) error {
			tm, ok := v.(time.Time)
			if !ok {
				return fmt.Errorf("unexpected %T for DATE", v)
			}
			b.Append(arrow.Date32FromTime(tm.UTC()))
			return nil
		}, nil
	case *array.TimestampBuilder:
		return func(v any) error {
			tm, ok := v.(time.Time)
			if !ok {
				return fmt.Errorf("unexpected %T for DATETIME", v)
			}
			b.Append(arrow.Timestamp(tm.UnixMicro()))
			return nil
		}, nil
	case *array.Decimal128Builder:
		scale := b.Type().(*arrow.Decimal128Type).Scale
		return func(v any) error {
			var bi *big.Int
			switch x := v.(type) {
			case decimal.Decimal:
				bi = x.Shift(scale).BigInt()
			case uint64:
				bi = new(big.Int).SetUint64(x)
				bi.Mul(bi, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
			default:
				return fmt.Errorf("unexpected %T for DECIMAL", v)
			}
			b.Append(decimal128.FromBigInt(bi))
			return nil
		}, nil
	}
	return nil, fmt.Errorf("no writer for Arrow type %s", fb.Type())
}

// storedString is how a string-typed Delta column stores MySQL text, ENUM, SET and JSON.
func storedString(t gms.Type, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case types.Timespan: // TIME, kept as its text
		return x.String(), nil
	case gms.JSONWrapper:
		iv, err := x.ToInterface()
		if err != nil {
			return "", err
		}
		b, err := json.Marshal(iv)
		return string(b), err
	}
	switch tt := t.(type) {
	case gms.EnumType:
		if idx, ok := v.(uint16); ok {
			s, _ := tt.At(int(idx))
			return s, nil
		}
	case gms.SetType:
		if bits, ok := v.(uint64); ok {
			return tt.BitsToString(bits)
		}
	}
	s, _, err := types.LongText.Convert(context.Background(), v)
	if err != nil {
		return "", err
	}
	return fmt.Sprint(s), nil
}
