package table

import (
	"net/url"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/lakehoused/lakehoused/txlog"
)

func TestArrowType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		delta string
		want  string
	}{
		{`"string"`, "utf8"},
		{`"long"`, "int64"},
		{`"integer"`, "int32"},
		{`"short"`, "int16"},
		{`"byte"`, "int8"},
		{`"float"`, "float32"},
		{`"double"`, "float64"},
		{`"boolean"`, "bool"},
		{`"binary"`, "binary"},
		{`"date"`, "date32"},
		{`"timestamp"`, "timestamp[us, tz=UTC]"},
		{`"timestamp_ntz"`, "timestamp[us]"},
		{`"decimal(10,2)"`, "decimal(10, 2)"},
		{`"decimal(38, 18)"`, "decimal(38, 18)"},
		{`"decimal"`, "decimal(10, 0)"},
		{`{"type":"array","elementType":"long","containsNull":false}`, "list<element: int64>"},
		{`{"type":"map","keyType":"string","valueType":"double","valueContainsNull":true}`, "map<utf8, float64, items_nullable>"},
		{`{"type":"struct","fields":[{"name":"a","type":"date","nullable":false,"metadata":{}}]}`, "struct<a: date32>"},
	}
	for _, tc := range tests {
		var dt txlog.DataType
		if err := dt.UnmarshalJSON([]byte(tc.delta)); err != nil {
			t.Fatal(err)
		}
		got, err := ArrowType(dt)
		if err != nil {
			t.Errorf("%s: %v", tc.delta, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("%s: got %s, want %s", tc.delta, got, tc.want)
		}
	}
	for _, bad := range []string{"variant", "void", "decimal(39,2)", "decimal(5,6)", "decimal(x)", "interval"} {
		_, err := ArrowType(txlog.DataType{Name: bad})
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: err = %v, want an error naming the type", bad, err)
		}
	}
}

func TestArrowSchemaNamesColumnInError(t *testing.T) {
	t.Parallel()
	_, err := ArrowSchema(simpleSchema("id:long", "v:variant"))
	if err == nil || !strings.Contains(err.Error(), `column "v"`) {
		t.Fatalf("err = %v", err)
	}
	as, err := ArrowSchema(simpleSchema("id:long"))
	if err != nil || !arrow.TypeEqual(as.Field(0).Type, arrow.PrimitiveTypes.Int64) || !as.Field(0).Nullable {
		t.Fatalf("schema %v, err %v", as, err)
	}
}

func TestPartitionPaths(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"plain", "a/b", "x=y", "50%", "sp ace", "😈", "c:\\d", "q?#[]^{}'\"*", "\x01ctl"} {
		dir := "p=" + escapePartitionPathValue(v)
		if strings.ContainsAny(dir[2:], "/=:") {
			t.Errorf("%q escaped to %q still has path syntax", v, dir)
		}
		key := dir + "/part-1.zstd.parquet"
		uri := pathToURI(key)
		if strings.ContainsAny(uri, " ?#") {
			t.Errorf("uri %q is not encoded", uri)
		}
		back, err := url.PathUnescape(uri)
		if err != nil || back != key {
			t.Errorf("%q: uri %q decodes to %q (%v)", key, uri, back, err)
		}
		// Hive unescaping of the directory gives the value back.
		if got, _ := url.PathUnescape(dir[2:]); got != v {
			t.Errorf("%q: directory %q unescapes to %q", v, dir, got)
		}
	}
	for _, tc := range []struct{ path, key string }{
		{"part-1.parquet", "part-1.parquet"},
		{"letter=%252F%252520%2525f/part-1.parquet", "letter=%2F%2520%25f/part-1.parquet"},
		{"mem://table/x%20y/part.parquet", "x y/part.parquet"},
	} {
		got, err := addPathToKey(tc.path, "mem://table")
		if err != nil || got != tc.key {
			t.Errorf("addPathToKey(%q) = %q, %v; want %q", tc.path, got, err, tc.key)
		}
	}
	if _, err := addPathToKey("s3://other/x.parquet", "mem://table"); err == nil {
		t.Error("a path outside the table must be refused")
	}
}

func TestParsePartitionValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		k    valueKind
		s    string
		want any
	}{
		{kindTimestamp, "1970-01-02 08:45:00", int64(117900000000)},
		{kindTimestamp, "1970-01-01T00:00:00.123456Z", int64(123456)},
		{kindTimestamp, "1970-01-01T01:00:00+01:00", int64(0)},
		{kindDate, "1969-12-31", int64(-1)},
		{kindInt, "-42", int64(-42)},
		{kindBool, "true", true},
		{kindFloat32, "1.1", float64(float32(1.1))},
	}
	for _, tc := range tests {
		got, err := parsePartitionValue(tc.k, tc.s)
		if err != nil || got != tc.want {
			t.Errorf("parsePartitionValue(%q) = %v, %v; want %v", tc.s, got, err, tc.want)
		}
	}
}
