package connector

import (
	"bytes"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestParseOptions(t *testing.T) {
	t.Parallel()
	known := []string{"header", "delimiter", "columns", "null", "skip", "quote"}
	cases := []struct {
		in   string
		want Options
		err  string
	}{
		{in: "", want: Options{}},
		{in: "header=true", want: Options{"header": "true"}},
		{in: " HEADER = false , skip=2 ", want: Options{"header": "false", "skip": "2"}},
		{in: "columns=id BIGINT,name VARCHAR(20), header=false", want: Options{"columns": "id BIGINT,name VARCHAR(20)", "header": "false"}},
		{in: "columns=amount DECIMAL(12,2),id INT;header=true", want: Options{"columns": "amount DECIMAL(12,2),id INT", "header": "true"}},
		{in: "header=true\nskip=1\n", want: Options{"header": "true", "skip": "1"}},
		{in: "delimiter=';', null='N/A'", want: Options{"delimiter": ";", "null": "N/A"}},
		{in: `delimiter=",", quote='''' `, want: Options{"delimiter": ",", "quote": "'"}},
		{in: "delimiter=;", want: Options{"delimiter": ";"}},
		{in: "delimiter=,", want: Options{"delimiter": ","}},
		{in: "delimiter=;,header=true", want: Options{"delimiter": ";", "header": "true"}},
		{in: "null=' NA '", want: Options{"null": " NA "}},
		{in: "null=", want: Options{"null": ""}},
		{in: "delimiter=\t", want: Options{"delimiter": "\t"}},
		{in: "header=true,", want: Options{"header": "true"}},
		{in: "bogus=1", err: `unknown option "bogus"; known options are: header, delimiter, columns, null, skip, quote`},
		{in: "header=true,header=false", err: `option "header" is given twice`},
		{in: "header", err: `option "header" has no value`},
		{in: "=1", err: "expected an option name"},
		{in: "null='abc", err: "has no closing '"},
		{in: "null='a' b", err: "after the quoted value"},
	}
	for _, c := range cases {
		got, err := ParseOptions(c.in, known...)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseOptions(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseOptions(%q): %v", c.in, err)
			continue
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("ParseOptions(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Without known keys, any key is accepted.
	if o, err := ParseOptions("anything=1"); err != nil || o["anything"] != "1" {
		t.Errorf("ParseOptions without known keys = %v, %v", o, err)
	}
}

func TestOptionsBoolInt(t *testing.T) {
	t.Parallel()
	o := Options{"a": "Yes", "b": "off", "c": "1", "d": "maybe", "n": " 42 ", "bad": "4x"}
	for _, c := range []struct {
		key  string
		def  bool
		want bool
		err  bool
	}{{"a", false, true, false}, {"b", true, false, false}, {"c", false, true, false}, {"missing", true, true, false}, {"d", false, false, true}} {
		got, err := o.Bool(c.key, c.def)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("Bool(%q) = %v, %v", c.key, got, err)
		}
	}
	if n, err := o.Int("n", 0); n != 42 || err != nil {
		t.Errorf("Int(n) = %d, %v", n, err)
	}
	if n, err := o.Int("missing", 7); n != 7 || err != nil {
		t.Errorf("Int(missing) = %d, %v", n, err)
	}
	if _, err := o.Int("bad", 0); err == nil || !strings.Contains(err.Error(), `bad="4x"`) {
		t.Errorf("Int(bad) error = %v", err)
	}
}

func TestDecompress(t *testing.T) {
	t.Parallel()
	plain := []byte(strings.Repeat("id,name\n1,alpha\n", 1000))
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(plain)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain)
	zw.Close()
	cases := []struct {
		name, mode string
		in         []byte
		want       []byte
		err        string
	}{
		{"plain auto", "auto", plain, plain, ""},
		{"plain default", "", plain, plain, ""},
		{"gzip auto", "auto", gz.Bytes(), plain, ""},
		{"zstd auto", "AUTO", zs.Bytes(), plain, ""},
		{"gzip forced", "gzip", gz.Bytes(), plain, ""},
		{"zstd forced", "zstd", zs.Bytes(), plain, ""},
		{"none keeps gzip bytes", "none", gz.Bytes(), gz.Bytes(), ""},
		{"empty", "auto", nil, nil, ""},
		{"gzip forced on plain", "gzip", plain, nil, "not a gzip stream"},
		{"zstd forced on plain", "zstd", plain, nil, "magic number mismatch"},
		{"unknown mode", "brotli", plain, nil, `compression="brotli" is not known`},
	}
	for _, c := range cases {
		rc, err := Decompress(bytes.NewReader(c.in), c.mode)
		var got []byte
		if err == nil {
			got, err = io.ReadAll(rc)
			rc.Close()
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error = %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: got %d bytes, %v; want %d bytes", c.name, len(got), err, len(c.want))
		}
	}
}
