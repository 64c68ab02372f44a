package table

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// conform returns arr as an array of type want: the type derived from the Delta schema.
// Files written by other engines (or by older versions of the table) decode to types that
// differ in ways that do not change the values: Spark's INT96 timestamps come back as
// nanoseconds, byte and short columns may come back as int32, nested field names differ in
// case, list elements are named "item" or "element", struct fields added later by ADD
// COLUMN are missing. Nested types are rebuilt around conformed children (arrow's cast
// kernel cannot reorder or add struct fields, nor cast maps); leaves go through the cast
// kernel. The result is a new reference the caller must release.
func conform(ctx context.Context, mem memory.Allocator, arr arrow.Array, want arrow.DataType) (arrow.Array, error) {
	if arrow.TypeEqual(arr.DataType(), want) {
		arr.Retain()
		return arr, nil
	}
	switch want := want.(type) {
	case *arrow.StructType, *arrow.ListType, *arrow.MapType:
		if arr.Data().Offset() != 0 {
			// Rebuilding reuses the validity and offset buffers as they are, which is only
			// right at offset 0; concatenating one array compacts it.
			c, err := array.Concatenate([]arrow.Array{arr}, mem)
			if err != nil {
				return nil, err
			}
			defer c.Release()
			arr = c
		}
		switch want := want.(type) {
		case *arrow.StructType:
			return conformStruct(ctx, mem, arr, want)
		case *arrow.MapType:
			return conformList(ctx, mem, arr, want, want.Elem())
		case *arrow.ListType:
			return conformList(ctx, mem, arr, want, want.Elem())
		}
	}
	if arr.DataType().ID() == arrow.NULL {
		return array.MakeArrayOfNull(mem, want, arr.Len()), nil
	}
	opts := compute.SafeCastOptions(want)
	if want.ID() == arrow.TIMESTAMP && arr.DataType().ID() == arrow.TIMESTAMP {
		// INT96 values are nanoseconds but Spark only ever stores microseconds in them;
		// an unsafe cast just drops zeros (and, for foreign files, sub-µs digits).
		opts = compute.UnsafeCastOptions(want)
	}
	out, err := compute.CastArray(ctx, arr, opts)
	if err != nil {
		return nil, fmt.Errorf("table: cannot read column of type %s as %s: %w", arr.DataType(), want, err)
	}
	return out, nil
}

func conformStruct(ctx context.Context, mem memory.Allocator, arr arrow.Array, want *arrow.StructType) (arrow.Array, error) {
	st, ok := arr.(*array.Struct)
	if !ok {
		return nil, fmt.Errorf("table: file column of type %s cannot be read as %s", arr.DataType(), want)
	}
	have := st.DataType().(*arrow.StructType).Fields()
	children := make([]arrow.ArrayData, want.NumFields())
	defer func() {
		for _, c := range children {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, f := range want.Fields() {
		var child arrow.Array
		if j := arrowFieldIndex(have, f.Name); j >= 0 {
			c, err := conform(ctx, mem, st.Field(j), f.Type)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			child = c
		} else {
			child = array.MakeArrayOfNull(mem, f.Type, arr.Len())
		}
		children[i] = child.Data()
		children[i].Retain()
		child.Release()
	}
	data := array.NewData(want, arr.Len(), arr.Data().Buffers()[:1], children, arr.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data), nil
}

// conformList handles lists and maps: same validity and offsets, conformed values.
func conformList(ctx context.Context, mem memory.Allocator, arr arrow.Array, want arrow.DataType, elem arrow.DataType) (arrow.Array, error) {
	var values arrow.Array
	switch a := arr.(type) {
	case *array.Map:
		values = a.ListValues()
	case *array.List:
		values = a.ListValues()
	default:
		return nil, fmt.Errorf("table: file column of type %s cannot be read as %s", arr.DataType(), want)
	}
	if _, isMap := want.(*arrow.MapType); isMap {
		if _, ok := arr.(*array.Map); !ok {
			// A list of key/value structs: accept it as a map only if it looks like one.
			if st, ok := values.DataType().(*arrow.StructType); !ok || st.NumFields() != 2 {
				return nil, fmt.Errorf("table: file column of type %s cannot be read as %s", arr.DataType(), want)
			}
		}
		values = renameKeyValue(values)
		defer values.Release()
	}
	child, err := conform(ctx, mem, values, elem)
	if err != nil {
		return nil, err
	}
	defer child.Release()
	data := array.NewData(want, arr.Len(), arr.Data().Buffers()[:2], []arrow.ArrayData{child.Data()}, arr.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data), nil
}

// renameKeyValue names the two fields of a map's entry struct "key" and "value", whatever
// the file called them (key_value.key / map.value / …), so they conform by name.
func renameKeyValue(values arrow.Array) arrow.Array {
	st := values.(*array.Struct)
	fs := st.DataType().(*arrow.StructType).Fields()
	if strings.EqualFold(fs[0].Name, "key") && strings.EqualFold(fs[1].Name, "value") {
		values.Retain()
		return values
	}
	fs[0].Name, fs[1].Name = "key", "value"
	d := values.Data()
	data := array.NewData(arrow.StructOf(fs...), d.Len(), d.Buffers(), d.Children(), d.NullN(), d.Offset())
	defer data.Release()
	return array.MakeFromData(data)
}
