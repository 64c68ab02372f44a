package connector

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON object parser for read_json. It parses one record (a top-level object) at a
// time from a byte slice without building Go values: each member is a key and the span of
// its value, which the reader turns straight into Arrow builder appends. That is several
// times faster than decoding into map[string]any, and it keeps the number text, so integers
// and doubles are told apart exactly.

type jsonKind uint8

const (
	jNull jsonKind = iota
	jBool
	jNumber
	jString
	jNested // object or array
)

// span is a byte range of the record (or of the parser's arena, for unescaped strings).
type jsonSpan struct {
	lo, hi int32
	arena  bool
}

type jsonValue struct {
	kind  jsonKind
	isInt bool // number without fraction or exponent
	b     bool
	raw   jsonSpan // the value as written (for strings: with quotes and escapes)
	str   jsonSpan // string content, unescaped
}

type jsonMember struct {
	key jsonSpan
	val jsonValue
}

type jsonParser struct {
	data    []byte
	pos     int
	arena   []byte // unescaped strings of the current record
	members []jsonMember
}

// jsonSyntaxError is a parse error at a byte offset of the record.
type jsonSyntaxError struct {
	off int
	msg string
}

func (e *jsonSyntaxError) Error() string { return e.msg }

func (p *jsonParser) bytes(s jsonSpan) []byte {
	if s.arena {
		return p.arena[s.lo:s.hi]
	}
	return p.data[s.lo:s.hi]
}

func (p *jsonParser) fail(format string, args ...any) error {
	return &jsonSyntaxError{off: p.pos, msg: fmt.Sprintf(format, args...)}
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// parseRecord parses data, which must hold one object and nothing else but whitespace,
// into p.members.
func (p *jsonParser) parseRecord(data []byte) error {
	p.data, p.pos, p.arena, p.members = data, 0, p.arena[:0], p.members[:0]
	if len(data) > math.MaxInt32 {
		return &jsonSyntaxError{msg: "record larger than 2 GiB"}
	}
	err := p.parseObject()
	var se *jsonSyntaxError
	if errors.As(err, &se) && !strings.HasPrefix(se.msg, "unterminated") {
		// Running out of data mid-object is reported as such, at the end of the data
		// (a JSON lines record cut by a line break lands here).
		if end := len(bytes.TrimRight(data, " \t\r\n")); se.off >= end {
			return &jsonSyntaxError{off: end, msg: "unexpected end of the object (missing '}')"}
		}
	}
	return err
}

func (p *jsonParser) parseObject() error {
	data := p.data
	p.skipSpace()
	if p.pos >= len(data) || data[p.pos] != '{' {
		return p.fail("expected a JSON object ('{')")
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(data) && data[p.pos] == '}' {
		p.pos++
	} else {
		for {
			p.skipSpace()
			if p.pos >= len(data) || data[p.pos] != '"' {
				return p.fail("expected a quoted key")
			}
			var m jsonMember
			var err error
			if _, m.key, err = p.parseString(); err != nil {
				return err
			}
			p.skipSpace()
			if p.pos >= len(data) || data[p.pos] != ':' {
				return p.fail("expected ':' after key %q", p.bytes(m.key))
			}
			p.pos++
			p.skipSpace()
			if m.val, err = p.parseValue(); err != nil {
				return err
			}
			p.members = append(p.members, m)
			p.skipSpace()
			if p.pos >= len(data) {
				return p.fail("unexpected end of the object (missing '}')")
			}
			if c := data[p.pos]; c == ',' {
				p.pos++
				continue
			} else if c == '}' {
				p.pos++
				break
			}
			return p.fail("expected ',' or '}' after the value of key %q", p.bytes(m.key))
		}
	}
	p.skipSpace()
	if p.pos < len(data) {
		return p.fail("unexpected text after the object")
	}
	return nil
}

func (p *jsonParser) parseValue() (jsonValue, error) {
	if p.pos >= len(p.data) {
		return jsonValue{}, p.fail("expected a value")
	}
	start := p.pos
	switch c := p.data[p.pos]; {
	case c == '"':
		raw, str, err := p.parseString()
		return jsonValue{kind: jString, raw: raw, str: str}, err
	case c == '{' || c == '[':
		end, err := nestedEnd(p.data, p.pos)
		if err != nil {
			return jsonValue{}, err
		}
		p.pos = end
		return jsonValue{kind: jNested, raw: jsonSpan{lo: int32(start), hi: int32(end)}}, nil
	case c == 't' || c == 'f' || c == 'n':
		rest := p.data[p.pos:]
		v := jsonValue{kind: jBool}
		switch {
		case len(rest) >= 4 && string(rest[:4]) == "true":
			v.b = true
			p.pos += 4
		case len(rest) >= 5 && string(rest[:5]) == "false":
			p.pos += 5
		case len(rest) >= 4 && string(rest[:4]) == "null":
			v.kind = jNull
			p.pos += 4
		default:
			return jsonValue{}, p.fail("unexpected character %q where a value should start", c)
		}
		v.raw = jsonSpan{lo: int32(start), hi: int32(p.pos)}
		return v, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.parseNumber()
	}
	return jsonValue{}, p.fail("unexpected character %q where a value should start", p.data[p.pos])
}

func (p *jsonParser) parseNumber() (jsonValue, error) {
	d, start := p.data, p.pos
	i := p.pos
	if d[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
			n++
		}
		return n
	}
	intStart := i
	if digits() == 0 {
		p.pos = i
		return jsonValue{}, p.fail("malformed number")
	}
	if d[intStart] == '0' && i-intStart > 1 {
		p.pos = intStart
		return jsonValue{}, p.fail("malformed number (leading zero)")
	}
	isInt := true
	if i < len(d) && d[i] == '.' {
		i++
		isInt = false
		if digits() == 0 {
			p.pos = i
			return jsonValue{}, p.fail("malformed number (no digits after '.')")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		isInt = false
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			p.pos = i
			return jsonValue{}, p.fail("malformed number (no digits in the exponent)")
		}
	}
	p.pos = i
	return jsonValue{kind: jNumber, isInt: isInt, raw: jsonSpan{lo: int32(start), hi: int32(i)}}, nil
}

// plainStringByte marks bytes that need no attention inside a string.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// parseString reads the string at p.pos (at its opening quote). Strings without escapes
// and with valid UTF-8 are returned in place; others are unescaped into the arena, with
// invalid UTF-8 replaced by U+FFFD as encoding/json does.
func (p *jsonParser) parseString() (raw, str jsonSpan, err error) {
	d := p.data
	start := p.pos
	i := p.pos + 1
	ascii := true
	for i < len(d) && plainStringByte[d[i]] {
		i++
	}
	for i < len(d) && d[i] != '"' && d[i] != '\\' {
		if d[i] < 0x20 {
			p.pos = i
			return raw, str, p.fail("control character %#x in a string (escape it)", d[i])
		}
		if d[i] >= 0x80 {
			ascii = false
		}
		i++
	}
	if i >= len(d) {
		p.pos = i
		return raw, str, p.fail("unterminated string")
	}
	if d[i] == '"' && (ascii || utf8.Valid(d[start+1:i])) {
		p.pos = i + 1
		return jsonSpan{lo: int32(start), hi: int32(i + 1)}, jsonSpan{lo: int32(start + 1), hi: int32(i)}, nil
	}
	// Slow path: unescape from the start.
	lo := len(p.arena)
	i = start + 1
	for {
		if i >= len(d) {
			p.pos = i
			return raw, str, p.fail("unterminated string")
		}
		c := d[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return jsonSpan{lo: int32(start), hi: int32(i + 1)}, jsonSpan{arena: true, lo: int32(lo), hi: int32(len(p.arena))}, nil
		case c < 0x20:
			p.pos = i
			return raw, str, p.fail("control character %#x in a string (escape it)", c)
		case c == '\\':
			if i+1 >= len(d) {
				p.pos = i
				return raw, str, p.fail("unterminated string")
			}
			switch e := d[i+1]; e {
			case '"', '\\', '/':
				p.arena = append(p.arena, e)
			case 'b':
				p.arena = append(p.arena, '\b')
			case 'f':
				p.arena = append(p.arena, '\f')
			case 'n':
				p.arena = append(p.arena, '\n')
			case 'r':
				p.arena = append(p.arena, '\r')
			case 't':
				p.arena = append(p.arena, '\t')
			case 'u':
				r, n := hex4(d[i+2:])
				if n < 0 {
					p.pos = i
					return raw, str, p.fail(`malformed \u escape`)
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2, n2 := rune(-1), -1
					if i+3 < len(d) && d[i+2] == '\\' && d[i+3] == 'u' {
						r2, n2 = hex4(d[i+4:])
					}
					if dec := utf16.DecodeRune(r, r2); n2 >= 0 && dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				p.arena = utf8.AppendRune(p.arena, r)
			default:
				p.pos = i
				return raw, str, p.fail("unknown escape \\%c", e)
			}
			i += 2
		case c < 0x80:
			p.arena = append(p.arena, c)
			i++
		default:
			r, n := utf8.DecodeRune(d[i:])
			p.arena = utf8.AppendRune(p.arena, r)
			i += n
		}
	}
}

func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, -1
		}
		r = r<<4 | rune(c)
	}
	return r, 4
}

// nestedEnd returns the offset just past the object or array starting at d[i], matching
// brackets outside strings. The contents are checked later, when compacted.
func nestedEnd(d []byte, i int) (int, error) {
	depth := 0
	for ; i < len(d); i++ {
		switch d[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		case '"':
			for i++; i < len(d) && d[i] != '"'; i++ {
				if d[i] == '\\' {
					i++
				}
			}
		}
	}
	return i, &jsonSyntaxError{off: i, msg: "unterminated object or array"}
}

// recordSplitter cuts a JSON stream into records: lines of JSON lines, or the elements of a
// top-level array. Each record's bytes are valid until the next call.
type recordSplitter struct {
	br    *bufio.Reader
	array bool
	line  int // line number of the last record's start (1-based)
	next  int // line number at the reader's position
	count int // records returned so far
	state int // array: 0 expects a value or ']', 1 expects ',' or ']', 2 after ']'
	buf   []byte
}

var errNotObject = errors.New("not a JSON object")

// newRecordSplitter looks at the first non-space byte: '[' for an array, '{' for JSON
// lines. An empty stream yields no records.
func newRecordSplitter(br *bufio.Reader) (*recordSplitter, error) {
	s := &recordSplitter{br: br, next: 1}
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		br.Discard(3) // byte order mark
	}
	c, err := s.skipSpace()
	if err == io.EOF {
		s.state = 2
		s.array = true
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	switch c {
	case '[':
		s.array = true
		br.Discard(1)
	case '{':
	default:
		return nil, fmt.Errorf("line %d starts with %q: read_json reads JSON lines (one object per line) or a JSON array of objects", s.next, c)
	}
	return s, nil
}

// skipSpace skips whitespace, counting lines, and peeks at the next byte.
func (s *recordSplitter) skipSpace() (byte, error) {
	for {
		b, err := s.br.Peek(1)
		if err != nil {
			return 0, err
		}
		switch b[0] {
		case '\n':
			s.next++
		case ' ', '\t', '\r':
		default:
			return b[0], nil
		}
		s.br.Discard(1)
	}
}

// record returns the next record, or io.EOF.
func (s *recordSplitter) record() ([]byte, error) {
	if s.array {
		return s.element()
	}
	for {
		s.line = s.next
		b, err := s.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			s.buf = append(s.buf[:0], b...)
			for err == bufio.ErrBufferFull {
				b, err = s.br.ReadSlice('\n')
				s.buf = append(s.buf, b...)
			}
			b = s.buf
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if len(b) == 0 && err == io.EOF {
			return nil, io.EOF
		}
		s.next++
		if len(bytes.TrimSpace(b)) == 0 {
			if err == io.EOF {
				return nil, io.EOF
			}
			continue
		}
		s.count++
		return b, nil
	}
}

// element returns the next element of the array, which must be an object.
func (s *recordSplitter) element() ([]byte, error) {
	for {
		if s.state == 2 {
			if c, err := s.skipSpace(); err == nil {
				return nil, fmt.Errorf("line %d: unexpected %q after the end of the array", s.next, c)
			} else if err != io.EOF {
				return nil, err
			}
			return nil, io.EOF
		}
		c, err := s.skipSpace()
		if err == io.EOF {
			return nil, fmt.Errorf("line %d: the array is not closed (missing ']')", s.next)
		}
		if err != nil {
			return nil, err
		}
		if c == ']' {
			s.br.Discard(1)
			s.state = 2
			continue
		}
		if s.state == 1 {
			if c != ',' {
				return nil, fmt.Errorf("line %d: expected ',' or ']' after record %d, found %q", s.next, s.count, c)
			}
			s.br.Discard(1)
			s.state = 0
			continue
		}
		s.line = s.next
		s.count++
		if c != '{' {
			return nil, fmt.Errorf("record %d (line %d): %w; read_json wants an array of objects", s.count, s.line, errNotObject)
		}
		s.state = 1
		return s.object()
	}
}

// object reads one object from the stream, matching braces outside strings.
func (s *recordSplitter) object() ([]byte, error) {
	s.buf = s.buf[:0]
	depth, inString, escaped := 0, false, false
	for {
		if _, err := s.br.Peek(1); err != nil {
			if err == io.EOF {
				return nil, fmt.Errorf("record %d (line %d): unexpected end of file inside the object", s.count, s.line)
			}
			return nil, err
		}
		chunk, _ := s.br.Peek(s.br.Buffered())
		for i, c := range chunk {
			switch {
			case inString:
				switch {
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					inString = false
				case c == '\n':
					s.next++
				}
			case c == '"':
				inString = true
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth == 0 {
					s.buf = append(s.buf, chunk[:i+1]...)
					s.br.Discard(i + 1)
					return s.buf, nil
				}
			case c == '\n':
				s.next++
			}
		}
		s.buf = append(s.buf, chunk...)
		s.br.Discard(len(chunk))
	}
}
