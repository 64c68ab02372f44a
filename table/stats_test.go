package table

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStatsGolden(t *testing.T) {
	t.Parallel()
	long40 := strings.Repeat("a", 32) + "bcdefghi"
	nonASCII := strings.Repeat("z", 32) + "é"
	tests := []struct {
		name   string
		schema []string // name:type
		json   string   // full schema JSON, instead of schema
		rows   string
		limit  int
		want   string
	}{{
		name:   "ints strings nulls and no bounds for boolean/binary",
		schema: []string{"id:long", "s:string", "b:boolean", "bin:binary", "sm:byte"},
		rows:   `[{"id":3,"s":"b","b":true,"bin":"AA==","sm":-1},{"id":-7,"s":null,"b":null,"bin":null,"sm":5},{"id":null,"s":"a","b":false,"bin":"AQ==","sm":null}]`,
		want:   `{"numRecords":3,"minValues":{"id":-7,"s":"a","sm":-1},"maxValues":{"id":3,"s":"b","sm":5},"nullCount":{"id":1,"s":1,"b":1,"bin":1,"sm":1}}`,
	}, {
		name:   "strings cut to 32 characters with an upper-bound tie-breaker",
		schema: []string{"s:string"},
		rows:   `[{"s":"` + long40 + `"},{"s":"` + strings.Repeat("a", 33) + `"}]`,
		want:   `{"numRecords":2,"minValues":{"s":"` + strings.Repeat("a", 32) + `"},"maxValues":{"s":"` + strings.Repeat("a", 32) + "\x7f" + `"},"nullCount":{"s":0}}`,
	}, {
		name:   "non-ASCII cut character takes U+10FFFF",
		schema: []string{"s:string"},
		rows:   `[{"s":"` + nonASCII + `"}]`,
		want:   `{"numRecords":1,"minValues":{"s":"` + strings.Repeat("z", 32) + `"},"maxValues":{"s":"` + strings.Repeat("z", 32) + "\U0010FFFF" + `"},"nullCount":{"s":0}}`,
	}, {
		name:   "timestamps in milliseconds: min truncated, max rounded up",
		schema: []string{"ts:timestamp", "n:timestamp_ntz", "d:date"},
		rows:   `[{"ts":"2026-11-26T10:00:00.123456Z","n":"2026-11-26T10:00:00.5","d":"2026-11-26"},{"ts":"2026-11-26T09:00:00.000999Z","n":"2026-11-26T10:00:00.0001","d":"1969-12-31"},{"ts":"2026-11-26T09:30:00.000Z","n":null,"d":null}]`,
		want:   `{"numRecords":3,"minValues":{"ts":"2026-11-26T09:00:00.000Z","n":"2026-11-26T10:00:00.000","d":"1969-12-31"},"maxValues":{"ts":"2026-11-26T10:00:00.124Z","n":"2026-11-26T10:00:00.500","d":"2026-11-26"},"nullCount":{"ts":0,"n":1,"d":1}}`,
	}, {
		name:   "decimals are JSON numbers with their scale; floats keep float32 precision",
		schema: []string{"dec:decimal(10,2)", "big:decimal(38,18)", "f:float", "x:double"},
		rows:   `[{"dec":"12.34","big":"1.5","f":1.1,"x":-0.25},{"dec":"-5","big":"-12345678901234567890.123456789012345678","f":2,"x":1e300}]`,
		want:   `{"numRecords":2,"minValues":{"dec":-5.00,"big":-12345678901234567890.123456789012345678,"f":1.1,"x":-0.25},"maxValues":{"dec":12.34,"big":1.500000000000000000,"f":2.0,"x":1e+300},"nullCount":{"dec":0,"big":0,"f":0,"x":0}}`,
	}, {
		name: "nested structs nest; a NULL struct makes its fields NULL; arrays and maps get nullCount only",
		json: `{"type":"struct","fields":[
		 {"name":"id","type":"integer","nullable":true,"metadata":{}},
		 {"name":"st","type":{"type":"struct","fields":[{"name":"a","type":"long","nullable":true,"metadata":{}},{"name":"inner","type":{"type":"struct","fields":[{"name":"z","type":"string","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},
		 {"name":"arr","type":{"type":"array","elementType":"integer","containsNull":true},"nullable":true,"metadata":{}},
		 {"name":"m","type":{"type":"map","keyType":"string","valueType":"long","valueContainsNull":true},"nullable":true,"metadata":{}}]}`,
		rows: `[{"id":1,"st":{"a":5,"inner":{"z":"q"}},"arr":[1],"m":[]},{"id":2,"st":null,"arr":null,"m":null},{"id":3,"st":{"a":null,"inner":null},"arr":[],"m":[{"key":"k","value":1}]}]`,
		want: `{"numRecords":3,"minValues":{"id":1,"st":{"a":5,"inner":{"z":"q"}}},"maxValues":{"id":3,"st":{"a":5,"inner":{"z":"q"}}},"nullCount":{"id":0,"st":{"a":2,"inner":{"z":2}},"arr":1,"m":1}}`,
	}, {
		name:   "only the first StatsColumns leaf columns",
		schema: []string{"a:long", "b:long", "c:long"},
		rows:   `[{"a":1,"b":2,"c":3}]`,
		limit:  2,
		want:   `{"numRecords":1,"minValues":{"a":1,"b":2},"maxValues":{"a":1,"b":2},"nullCount":{"a":0,"b":0}}`,
	}, {
		name:   "negative StatsColumns means every column",
		schema: []string{"a:long", "b:long", "c:long"},
		rows:   `[{"a":1,"b":2,"c":3}]`,
		limit:  -1,
		want:   `{"numRecords":1,"minValues":{"a":1,"b":2,"c":3},"maxValues":{"a":1,"b":2,"c":3},"nullCount":{"a":0,"b":0,"c":0}}`,
	}, {
		name:   "all NULL column has nullCount only",
		schema: []string{"a:long", "s:string"},
		rows:   `[{"a":null,"s":null},{"a":null,"s":null}]`,
		want:   `{"numRecords":2,"minValues":{},"maxValues":{},"nullCount":{"a":2,"s":2}}`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := simpleSchema(tc.schema...)
			if tc.json != "" {
				s = mustSchema(t, tc.json)
			}
			rec := recordFromJSON(t, s, tc.rows)
			defer rec.Release()
			adds := writeAll(t, newMemStore(), s, nil, WriterOptions{StatsColumns: tc.limit}, splitRecord(rec, 1)...)
			got := adds[0].Stats
			if got != tc.want {
				t.Fatalf("stats\ngot  %s\nwant %s", got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("stats are not valid JSON: %s", got)
			}
		})
	}
}

func TestTruncateMaxStaysUpperBound(t *testing.T) {
	t.Parallel()
	prefix := strings.Repeat("x", 32)
	for _, s := range []string{
		prefix + "a", prefix + "\x7f", prefix + "é", prefix + "\U0010FFFF" + "a",
		prefix + strings.Repeat("\U0010FFFF", 40) + "a",
	} {
		m, ok := truncateMax(s)
		if !ok {
			continue // omitted max is always safe
		}
		if m < s {
			t.Errorf("truncateMax(%q) = %q is below the value", s, m)
		}
		if mn := truncateMin(s); mn > s {
			t.Errorf("truncateMin(%q) = %q is above the value", s, mn)
		}
	}
}
