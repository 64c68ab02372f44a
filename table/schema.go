package table

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/lakehoused/lakehoused/txlog"
)

// Arrow types the Delta primitives map to. Timestamps are microseconds because that is the
// precision Delta defines; `timestamp` carries the UTC zone so that consumers know the
// instant is absolute, `timestamp_ntz` carries none (wall-clock time).
var (
	timestampUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	timestampNTZ = &arrow.TimestampType{Unit: arrow.Microsecond}
)

// ArrowSchema maps a Delta table schema to the Arrow schema of the record batches that
// Writer accepts and Scan produces (all columns, schema order, partition columns included).
func ArrowSchema(s *txlog.Schema) (*arrow.Schema, error) {
	if s == nil {
		return nil, fmt.Errorf("table: nil schema")
	}
	fields, err := arrowFields(s.Fields)
	if err != nil {
		return nil, err
	}
	return arrow.NewSchema(fields, nil), nil
}

func arrowFields(fs []txlog.StructField) ([]arrow.Field, error) {
	out := make([]arrow.Field, len(fs))
	for i, f := range fs {
		t, err := ArrowType(f.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", f.Name, err)
		}
		out[i] = arrow.Field{Name: f.Name, Type: t, Nullable: f.Nullable}
	}
	return out, nil
}

// ArrowType maps one Delta data type to Arrow. Lists name their element "element" and maps
// use "key"/"value", the names the Parquet spec and Spark use, so the Parquet files we write
// look like Spark's.
func ArrowType(t txlog.DataType) (arrow.DataType, error) {
	switch {
	case t.Struct != nil:
		fs, err := arrowFields(t.Struct.Fields)
		if err != nil {
			return nil, err
		}
		return arrow.StructOf(fs...), nil
	case t.Array != nil:
		et, err := ArrowType(t.Array.ElementType)
		if err != nil {
			return nil, err
		}
		return arrow.ListOfField(arrow.Field{Name: "element", Type: et, Nullable: t.Array.ContainsNull}), nil
	case t.Map != nil:
		kt, err := ArrowType(t.Map.KeyType)
		if err != nil {
			return nil, err
		}
		vt, err := ArrowType(t.Map.ValueType)
		if err != nil {
			return nil, err
		}
		return arrow.MapOfFields(arrow.Field{Name: "key", Type: kt},
			arrow.Field{Name: "value", Type: vt, Nullable: t.Map.ValueContainsNull}), nil
	}
	switch name := strings.ToLower(strings.TrimSpace(t.Name)); name {
	case "string":
		return arrow.BinaryTypes.String, nil
	case "long":
		return arrow.PrimitiveTypes.Int64, nil
	case "integer":
		return arrow.PrimitiveTypes.Int32, nil
	case "short":
		return arrow.PrimitiveTypes.Int16, nil
	case "byte":
		return arrow.PrimitiveTypes.Int8, nil
	case "float":
		return arrow.PrimitiveTypes.Float32, nil
	case "double":
		return arrow.PrimitiveTypes.Float64, nil
	case "boolean":
		return arrow.FixedWidthTypes.Boolean, nil
	case "binary":
		return arrow.BinaryTypes.Binary, nil
	case "date":
		return arrow.FixedWidthTypes.Date32, nil
	case "timestamp":
		return timestampUTC, nil
	case "timestamp_ntz":
		return timestampNTZ, nil
	default:
		if p, s, ok, err := parseDecimalType(name); ok {
			if err != nil {
				return nil, err
			}
			return &arrow.Decimal128Type{Precision: p, Scale: s}, nil
		}
		return nil, fmt.Errorf("table: unsupported Delta type %q; supported are string, long, integer, short, byte, float, double, boolean, binary, date, timestamp, timestamp_ntz, decimal(p,s), struct, array and map", t.Name)
	}
}

// parseDecimalType reads "decimal(p,s)" (spaces allowed) or plain "decimal", which Spark
// treats as decimal(10,0). ok reports whether name is a decimal type at all.
func parseDecimalType(name string) (p, s int32, ok bool, err error) {
	if name == "decimal" {
		return 10, 0, true, nil
	}
	rest, found := strings.CutPrefix(name, "decimal(")
	if !found {
		return 0, 0, false, nil
	}
	rest, found = strings.CutSuffix(rest, ")")
	ps, ss, comma := strings.Cut(rest, ",")
	if !found || !comma {
		return 0, 0, true, fmt.Errorf("table: malformed decimal type %q; want decimal(p,s)", name)
	}
	pi, err1 := strconv.Atoi(strings.TrimSpace(ps))
	si, err2 := strconv.Atoi(strings.TrimSpace(ss))
	if err1 != nil || err2 != nil || pi < 1 || pi > 38 || si < 0 || si > pi {
		return 0, 0, true, fmt.Errorf("table: malformed decimal type %q; want decimal(p,s) with 1 <= p <= 38 and 0 <= s <= p", name)
	}
	return int32(pi), int32(si), true, nil
}

// fieldIndex finds a column by name ignoring case, as Delta column names are unique
// ignoring case. It returns -1 when absent.
func fieldIndex(fs []txlog.StructField, name string) int {
	for i, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return i
		}
	}
	return -1
}

// columnNames lists the names for error messages ("columns are: a, b, c").
func columnNames(fs []txlog.StructField) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// partitionFields resolves partition column names against the schema, in the order given.
func partitionFields(s *txlog.Schema, partitionCols []string) ([]int, error) {
	idx := make([]int, len(partitionCols))
	for i, name := range partitionCols {
		j := fieldIndex(s.Fields, name)
		if j < 0 {
			return nil, fmt.Errorf("table: partition column %q is not in the schema; columns are: %s", name, columnNames(s.Fields))
		}
		if t := s.Fields[j].Type; t.Struct != nil || t.Array != nil || t.Map != nil {
			return nil, fmt.Errorf("table: partition column %q has a nested type; partition by a primitive column", name)
		}
		idx[i] = j
	}
	return idx, nil
}
