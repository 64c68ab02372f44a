package table

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// TestParquetLogicalTypes pins the Parquet types of our files to the Delta protocol's
// mapping, so that Spark, DuckDB and delta-rs read them: no Arrow-only types, standard
// 3-level lists and maps, INT(8)/INT(16) for byte/short, decimals as integers where they fit.
func TestParquetLogicalTypes(t *testing.T) {
	t.Parallel()
	s := mustSchema(t, allTypesSchema)
	rec := recordFromJSON(t, s, allTypesRows)
	defer rec.Release()
	st := newMemStore()
	adds := writeAll(t, st, s, nil, WriterOptions{}, rec)
	key, _ := url.PathUnescape(adds[0].Path)
	data, _ := st.Get(context.Background(), key)
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	var b strings.Builder
	schema.PrintSchema(pf.MetaData().Schema.Root(), &b, 2)
	got := b.String()
	for _, want := range []string{
		"optional byte_array field_id=-1 s (String)",
		"optional int64 field_id=-1 l (Int(bitWidth=64, isSigned=true))",
		"optional int32 field_id=-1 sh (Int(bitWidth=16, isSigned=true))",
		"optional int32 field_id=-1 b (Int(bitWidth=8, isSigned=true))",
		"optional int32 field_id=-1 dt (Date)",
		"optional int64 field_id=-1 ts (Timestamp(isAdjustedToUTC=true, timeUnit=microseconds",
		"optional int64 field_id=-1 tsn (Timestamp(isAdjustedToUTC=false, timeUnit=microseconds",
		"optional int64 field_id=-1 dec (Decimal(precision=10, scale=2))",
		"optional fixed_len_byte_array field_id=-1 big (Decimal(precision=38, scale=18))",
		"optional group field_id=-1 arr (List)",
		"repeated group field_id=-1 list",
		"optional int32 field_id=-1 element (Int(bitWidth=32, isSigned=true))",
		"repeated group field_id=-1 key_value",
		"optional group field_id=-1 m (Map)",
		"required byte_array field_id=-1 key (String)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Parquet schema lacks %q:\n%s", want, got)
		}
	}
	for _, kv := range pf.MetaData().KeyValueMetadata().Keys() {
		if kv == "ARROW:schema" {
			t.Error("files should not carry ARROW:schema; the Delta schema is the source of truth")
		}
	}
	cc, _ := pf.MetaData().RowGroup(0).ColumnChunk(0)
	if c := cc.Compression().String(); !strings.EqualFold(c, "zstd") {
		t.Errorf("compression %s, want zstd", c)
	}
}

// TestDictionaryEncoding: strings of a large enough write get a dictionary, numbers do not,
// and a file of a few rows gets none at all.
func TestDictionaryEncoding(t *testing.T) {
	t.Parallel()
	s := simpleSchema("id:long", "city:string")
	var rows strings.Builder
	rows.WriteString("[")
	for i := range 5000 {
		if i > 0 {
			rows.WriteString(",")
		}
		fmt.Fprintf(&rows, `{"id":%d,"city":"c%d"}`, i, i%7)
	}
	rows.WriteString("]")
	for _, tc := range []struct {
		rows     string
		wantDict []bool // per column: id, city
	}{
		{rows.String(), []bool{false, true}},
		{`[{"id":1,"city":"x"}]`, []bool{false, false}},
	} {
		rec := recordFromJSON(t, s, tc.rows)
		st := newMemStore()
		adds := writeAll(t, st, s, nil, WriterOptions{}, rec)
		rec.Release()
		key, _ := url.PathUnescape(adds[0].Path)
		data, _ := st.Get(context.Background(), key)
		pf, err := file.NewParquetReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for c, want := range tc.wantDict {
			cc, err := pf.MetaData().RowGroup(0).ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			if got := cc.HasDictionaryPage(); got != want {
				t.Errorf("%d rows, column %d: dictionary %v, want %v", rec.NumRows(), c, got, want)
			}
		}
		pf.Close()
	}
}
