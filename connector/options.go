package connector

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Options is a parsed option string: key=value pairs separated by commas (or semicolons or
// newlines). A separator only separates options when what follows looks like `name=`;
// otherwise it belongs to the value, so 'columns=id BIGINT,name VARCHAR(20), header=false'
// gives columns the value "id BIGINT,name VARCHAR(20)". Values may be quoted with ' or "
// (a doubled quote inside stands for one), which keeps leading and trailing spaces and any
// separator. Keys are case-insensitive and stored in lower case.
type Options map[string]string

// ParseOptions parses s. A key not among known is an error that lists the known keys; with
// no known keys given, any key is accepted. A key given twice is an error.
func ParseOptions(s string, known ...string) (Options, error) {
	o := Options{}
	p := 0
	for {
		p = skipOptSpace(s, p, true)
		if p >= len(s) {
			return o, nil
		}
		k := optNameEnd(s, p)
		if k == p {
			return nil, fmt.Errorf("option string %q: expected an option name at %q; write options as name=value, separated by commas", s, clip(s[p:]))
		}
		key := strings.ToLower(s[p:k])
		p = skipOptSpace(s, k, false)
		if p >= len(s) || s[p] != '=' {
			return nil, fmt.Errorf("option string %q: option %q has no value; write %s=value", s, key, key)
		}
		for p++; p < len(s) && s[p] == ' '; p++ { // not tabs: delimiter=<tab> means one
		}
		var val string
		if p < len(s) && (s[p] == '\'' || s[p] == '"') {
			q := s[p]
			var b strings.Builder
			closed := false
			for p++; p < len(s); p++ {
				if s[p] == q {
					if p+1 < len(s) && s[p+1] == q {
						b.WriteByte(q)
						p++
						continue
					}
					closed = true
					p++
					break
				}
				b.WriteByte(s[p])
			}
			if !closed {
				return nil, fmt.Errorf("option string %q: the value of %q has no closing %c", s, key, q)
			}
			val = b.String()
			p = skipOptSpace(s, p, false)
			if p < len(s) && !isOptSep(s[p]) {
				return nil, fmt.Errorf("option string %q: unexpected %q after the quoted value of %q; separate options with commas", s, clip(s[p:]), key)
			}
		} else {
			start := p
			for p < len(s) && !(isOptSep(s[p]) && separates(s, p, p == start)) {
				p++
			}
			val = strings.Trim(s[start:p], " \r\n")
		}
		if len(known) > 0 && !slices.Contains(known, key) {
			return nil, fmt.Errorf("unknown option %q; known options are: %s", key, strings.Join(known, ", "))
		}
		if _, dup := o[key]; dup {
			return nil, fmt.Errorf("option %q is given twice", key)
		}
		o[key] = val
	}
}

func isOptSep(c byte) bool { return c == ',' || c == ';' || c == '\n' }

// separates reports whether the separator at p ends a value: it does when the next option
// (`name=`) follows, or the end of the string unless the value would be empty (so that
// 'delimiter=;' means a semicolon).
func separates(s string, p int, empty bool) bool {
	q := skipOptSpace(s, p+1, false)
	if q >= len(s) {
		return !empty
	}
	k := optNameEnd(s, q)
	if k == q {
		return false
	}
	k = skipOptSpace(s, k, false)
	return k < len(s) && s[k] == '='
}

// skipOptSpace skips blanks, and separators too when seps is set.
func skipOptSpace(s string, p int, seps bool) int {
	for p < len(s) && (s[p] == ' ' || s[p] == '\t' || s[p] == '\r' || s[p] == '\n' || seps && isOptSep(s[p])) {
		p++
	}
	return p
}

func optNameEnd(s string, p int) int {
	start := p
	for p < len(s) {
		c := s[p]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && p > start {
			p++
			continue
		}
		break
	}
	return p
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// Bool reads a boolean option: true/false, 1/0, yes/no, on/off (any case); def when absent.
func (o Options) Bool(key string, def bool) (bool, error) {
	v, ok := o[key]
	if !ok {
		return def, nil
	}
	if b, ok := parseBoolWord(v); ok {
		return b, nil
	}
	return false, fmt.Errorf("option %s=%q: want true or false", key, v)
}

func parseBoolWord(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes", "on":
		return true, true
	case "false", "0", "no", "off":
		return false, true
	}
	return false, false
}

// Int reads an integer option; def when absent.
func (o Options) Int(key string, def int64) (int64, error) {
	v, ok := o[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("option %s=%q: want a whole number", key, v)
	}
	return n, nil
}
