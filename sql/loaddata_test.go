package sql

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseDateTime(t *testing.T) {
	for _, c := range []struct {
		in   string
		prec int
		want string // "" = invalid
	}{
		{"2024-02-29", 0, "2024-02-29 00:00:00"},
		{"2023-02-29", 0, ""},
		{"1900-02-29", 0, ""},
		{"2000-02-29 23:59:59", 0, "2000-02-29 23:59:59"},
		{"1969-12-31 23:59:59.5", 0, "1970-01-01 00:00:00"},
		{"1000-01-01T01:02:03.1234567", 6, "1000-01-01 01:02:03.123457"},
		{"2024-1-2 3:04:05", 0, "2024-01-02 03:04:05"},
		{"2024-01-02 03:04:05.1236", 3, "2024-01-02 03:04:05.124"},
		{"9999-12-31 23:59:59", 0, "9999-12-31 23:59:59"},
		{"2024-13-01", 0, ""}, {"2024-01-01 24:00:00", 0, ""}, {"20240101", 0, ""}, {"2024-01-01x", 0, ""},
	} {
		us, ok := parseDateTime([]byte(c.in), c.prec)
		got := ""
		if ok {
			got = time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.999999")
		}
		if got != c.want {
			t.Errorf("parseDateTime(%q, %d) = %q, want %q", c.in, c.prec, got, c.want)
		}
	}
	// Every day from 1000 to 9999 agrees with the time package.
	for d := time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 10000; d = d.AddDate(0, 0, 1) {
		us, ok := parseDateTime([]byte(d.Format("2006-01-02")), 0)
		if !ok || us != d.UnixMicro() {
			t.Fatalf("%s: %d %v, want %d", d.Format("2006-01-02"), us, ok, d.UnixMicro())
		}
	}
}

// parse splits input with opts into records rendered as "f1|f2" (NULL as ∅), joined by ";".
func parse(t *testing.T, in string, opt csvOptions, readSize int) string {
	t.Helper()
	r := newCSVReader(&slowReader{data: []byte(in), n: readSize}, opt)
	var out []string
	for {
		b := &csvBatch{first: []int32{0}}
		more, err := r.next(b, 2)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < b.records(); i++ {
			var f []string
			for k := b.first[i]; k < b.first[i+1]; k++ {
				if b.offs[2*k] < 0 {
					f = append(f, "∅")
				} else {
					f = append(f, string(b.arena[b.offs[2*k]:b.offs[2*k+1]]))
				}
			}
			out = append(out, fmt.Sprintf("%d:%s", b.line[i], strings.Join(f, "|")))
		}
		if !more {
			return strings.Join(out, ";")
		}
	}
}

type slowReader struct {
	data []byte
	n    int
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, fmt.Errorf("EOF: %w", errEOF)
	}
	n := min(len(p), s.n, len(s.data))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

var errEOF = io.EOF

func TestCSVReader(t *testing.T) {
	def := csvOptions{fieldTerm: []byte("\t"), lineTerm: []byte("\n"), esc: '\\', hasEsc: true}
	csv := csvOptions{fieldTerm: []byte(","), lineTerm: []byte("\r\n"), encl: '"', hasEncl: true, esc: '\\', hasEsc: true}
	multi := csvOptions{fieldTerm: []byte("<>"), lineTerm: []byte("##"), lineStart: []byte("->"), ignoreRows: 1}
	for _, c := range []struct {
		in   string
		opt  csvOptions
		want string
	}{
		{"a\tb\n\\N\tNULL\n\nx\\ty\t\\\\\\n\n", def, "1:a|b;2:∅|∅;4:x\ty|\\\n"},
		{"last\tline", def, "1:last|line"},
		{"a\t\n", def, "1:a|"},
		{"\"a,b\",\"c\"\"d\"\r\n\"multi\r\nline\",\"e\\\"f\"\r\nplain,\"\"\r\n", csv, "1:a,b|c\"d;2:multi\r\nline|e\"f;3:plain|"},
		{"hdr<>x##->1<>2##skip<>me##junk->3<>4", multi, "2:1|2;4:3|4"},
		{"a,\\N,\"\\N\",NULL\r\n", csv, "1:a|∅|N|∅"},
	} {
		for _, rs := range []int{1, 2, 3, 7, 1 << 20} {
			if got := parse(t, c.in, c.opt, rs); got != c.want {
				t.Errorf("%q (reads of %d): got %q, want %q", c.in, rs, got, c.want)
			}
		}
	}
}
