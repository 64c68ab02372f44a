package connector

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/lakehoused/lakehoused/txlog"
)

// This file maps CSV column types, given as MySQL type names (columns='id BIGINT, …') or
// inferred from a sample, to Delta fields and to the parser each value goes through.

// colKind is the Arrow form a column is built in.
type colKind uint8

const (
	kindBool colKind = iota
	kindInt8
	kindInt16
	kindInt32
	kindInt64
	kindFloat32
	kindFloat64
	kindDecimal
	kindString
	kindBinary
	kindDate
	kindTimestamp
)

// csvColumn is one column's name, type and value rules.
type csvColumn struct {
	name     string
	kind     colKind
	sqlType  string // as the user would write it, for messages: BIGINT, VARCHAR(20)
	delta    string // Delta type name
	mysql    string // MetaMySQLType
	min, max int64  // integer range
	prec     int32  // decimal
	scale    int32
	maxChars int  // CHAR/VARCHAR length in characters; 0 = none
	maxBytes int  // TEXT/BLOB size in bytes; 0 = none
	json     bool // the value must be a JSON document
	anyBool  bool // accept 1/0, yes/no, t/f… as well as true/false
	inferred bool // the type came from the sample, not from columns=
}

func (c *csvColumn) field() txlog.StructField {
	meta := map[string]any{MetaMySQLType: c.mysql}
	if c.json {
		meta[MetaJSON] = true
	}
	return txlog.StructField{Name: c.name, Type: txlog.DataType{Name: c.delta}, Nullable: true, Metadata: meta}
}

// isString reports whether an empty quoted field is an empty value rather than NULL.
func (c *csvColumn) isString() bool { return c.kind == kindString || c.kind == kindBinary }

// parseColumnList reads 'name TYPE, name TYPE(n), …'. Names may be quoted with ` or ".
func parseColumnList(s string) ([]csvColumn, error) {
	var out []csvColumn
	for _, def := range splitTopLevel(s) {
		def = strings.TrimSpace(def)
		if def == "" {
			continue
		}
		name, rest, err := cutColumnName(def)
		if err != nil {
			return nil, err
		}
		c, err := parseMySQLType(rest)
		if err != nil {
			return nil, fmt.Errorf("columns: column %q: %w", name, err)
		}
		c.name = name
		for _, o := range out {
			if strings.EqualFold(o.name, name) {
				return nil, fmt.Errorf("columns: column %q is named twice", name)
			}
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("columns is empty; write columns='name TYPE, name TYPE, …'")
	}
	return out, nil
}

// splitTopLevel splits at commas outside parentheses and quotes.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '`' || c == '"' || c == '\'':
			q = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func cutColumnName(def string) (name, rest string, err error) {
	if def[0] == '`' || def[0] == '"' {
		i := strings.IndexByte(def[1:], def[0])
		if i < 0 {
			return "", "", fmt.Errorf("columns: %q: the name's closing %c is missing", def, def[0])
		}
		name, rest = def[1:i+1], def[i+2:]
	} else {
		i := strings.IndexAny(def, " \t\r\n")
		if i < 0 {
			return "", "", fmt.Errorf("columns: %q has no type; write columns='name TYPE, …', e.g. 'id BIGINT, name VARCHAR(20)'", def)
		}
		name, rest = def[:i], def[i:]
	}
	rest = strings.TrimSpace(rest)
	if name == "" || rest == "" {
		return "", "", fmt.Errorf("columns: %q needs a name and a type, e.g. 'id BIGINT'", def)
	}
	return name, rest, nil
}

// csvTypeNames lists the types columns= accepts, for messages.
const csvTypeNames = "TINYINT, SMALLINT, MEDIUMINT, INT, BIGINT (each optionally UNSIGNED), BOOLEAN, FLOAT, DOUBLE, DECIMAL(p,s), CHAR(n), VARCHAR(n), TINYTEXT, TEXT, MEDIUMTEXT, LONGTEXT, JSON, BINARY(n), VARBINARY(n), BLOB, DATE, DATETIME[(p)], TIMESTAMP[(p)]"

// parseMySQLType reads a MySQL column type such as "INT UNSIGNED" or "varchar(20)".
// Integer types widen as sql/ stores them, so that every value fits a signed Delta type.
func parseMySQLType(t string) (csvColumn, error) {
	words := strings.Fields(strings.ToLower(t))
	base := words[0]
	var args []int
	if i := strings.IndexByte(base, '('); i >= 0 || len(words) > 1 && strings.HasPrefix(words[1], "(") {
		// Re-split so that "decimal (12, 2)" and "decimal(12,2)" read alike.
		joined := strings.Join(words, " ")
		open := strings.IndexByte(joined, '(')
		cl := strings.IndexByte(joined, ')')
		if cl < open {
			return csvColumn{}, fmt.Errorf("type %q: unbalanced parentheses", t)
		}
		base = strings.TrimSpace(joined[:open])
		for _, a := range strings.Split(joined[open+1:cl], ",") {
			n, err := strconv.Atoi(strings.TrimSpace(a))
			if err != nil || n < 0 {
				return csvColumn{}, fmt.Errorf("type %q: %q is not a length or precision", t, strings.TrimSpace(a))
			}
			args = append(args, n)
		}
		words = append([]string{base}, strings.Fields(joined[cl+1:])...)
	}
	unsigned := false
	for _, w := range words[1:] {
		switch w {
		case "unsigned":
			unsigned = true
		case "signed":
		case "precision":
			if base != "double" {
				return csvColumn{}, fmt.Errorf("type %q is not known; types are %s", t, csvTypeNames)
			}
		default:
			return csvColumn{}, fmt.Errorf("type %q: %q is not understood; types are %s", t, w, csvTypeNames)
		}
	}
	arg := func(i, def int) int {
		if i < len(args) {
			return args[i]
		}
		return def
	}
	nargs := func(lo, hi int) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("type %q takes %d to %d arguments", t, lo, hi)
		}
		return nil
	}
	c := csvColumn{sqlType: strings.ToUpper(strings.Join(strings.Fields(t), " "))}
	intType := func(name string, bits uint, kind, ukind colKind, delta, udelta string) (csvColumn, error) {
		if err := nargs(0, 1); err != nil {
			return c, err
		}
		c.min, c.max, c.kind, c.delta, c.mysql = -1<<(bits-1), 1<<(bits-1)-1, kind, delta, name
		if unsigned {
			c.min, c.max, c.kind, c.delta, c.mysql = 0, 1<<bits-1, ukind, udelta, name+" unsigned"
		}
		return c, nil
	}
	switch base {
	case "bool", "boolean":
		if err := nargs(0, 0); err != nil {
			return c, err
		}
		c.kind, c.delta, c.mysql, c.anyBool = kindBool, "boolean", "tinyint(1)", true
		return c, nil
	case "tinyint":
		if len(args) == 1 && args[0] == 1 && !unsigned {
			c.kind, c.delta, c.mysql, c.anyBool = kindBool, "boolean", "tinyint(1)", true
			return c, nil
		}
		return intType("tinyint", 8, kindInt8, kindInt16, "byte", "short")
	case "smallint":
		return intType("smallint", 16, kindInt16, kindInt32, "short", "integer")
	case "mediumint":
		return intType("mediumint", 24, kindInt32, kindInt32, "integer", "integer")
	case "int", "integer":
		return intType("int", 32, kindInt32, kindInt64, "integer", "long")
	case "bigint":
		if err := nargs(0, 1); err != nil {
			return c, err
		}
		if unsigned {
			c.kind, c.delta, c.mysql, c.prec, c.scale = kindDecimal, "decimal(20,0)", "bigint unsigned", 20, 0
			return c, nil
		}
		c.kind, c.delta, c.mysql, c.min, c.max = kindInt64, "long", "bigint", math.MinInt64, math.MaxInt64
		return c, nil
	case "float":
		if err := nargs(0, 2); err != nil {
			return c, err
		}
		if arg(0, 0) > 24 {
			c.kind, c.delta, c.mysql = kindFloat64, "double", "double"
			return c, nil
		}
		c.kind, c.delta, c.mysql = kindFloat32, "float", "float"
		return c, nil
	case "double", "real":
		if err := nargs(0, 2); err != nil {
			return c, err
		}
		c.kind, c.delta, c.mysql = kindFloat64, "double", "double"
		return c, nil
	case "decimal", "numeric", "dec", "fixed":
		if err := nargs(0, 2); err != nil {
			return c, err
		}
		p, s := arg(0, 10), arg(1, 0)
		if p < 1 || p > 38 || s > p {
			return c, fmt.Errorf("type %q: want DECIMAL(p,s) with 1 <= p <= 38 and s <= p (Delta decimals hold at most 38 digits)", t)
		}
		c.kind, c.prec, c.scale = kindDecimal, int32(p), int32(s)
		c.delta = fmt.Sprintf("decimal(%d,%d)", p, s)
		c.mysql = c.delta
		return c, nil
	case "char", "varchar", "binary", "varbinary":
		if base == "char" || base == "binary" {
			if err := nargs(0, 1); err != nil {
				return c, err
			}
		} else if err := nargs(1, 1); err != nil {
			return c, fmt.Errorf("type %q needs a length, e.g. %s(255)", t, strings.ToUpper(base))
		}
		n := arg(0, 1)
		c.kind, c.delta, c.mysql = kindString, "string", fmt.Sprintf("%s(%d)", base, n)
		c.maxChars = n
		if base == "binary" || base == "varbinary" {
			c.kind, c.delta, c.maxChars, c.maxBytes = kindBinary, "binary", 0, n
		}
		return c, nil
	case "tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob":
		if err := nargs(0, 1); err != nil {
			return c, err
		}
		c.kind, c.delta, c.mysql = kindString, "string", base
		if strings.HasSuffix(base, "blob") {
			c.kind, c.delta = kindBinary, "binary"
		}
		switch strings.TrimSuffix(strings.TrimSuffix(base, "text"), "blob") {
		case "tiny":
			c.maxBytes = 1<<8 - 1
		case "":
			c.maxBytes = 1<<16 - 1
		case "medium":
			c.maxBytes = 1<<24 - 1
		}
		return c, nil
	case "json":
		if err := nargs(0, 0); err != nil {
			return c, err
		}
		c.kind, c.delta, c.mysql, c.json = kindString, "string", "json", true
		return c, nil
	case "date":
		if err := nargs(0, 0); err != nil {
			return c, err
		}
		c.kind, c.delta, c.mysql = kindDate, "date", "date"
		return c, nil
	case "datetime", "timestamp":
		if err := nargs(0, 1); err != nil {
			return c, err
		}
		c.kind, c.delta, c.mysql = kindTimestamp, "timestamp", base
		if len(args) == 1 {
			if args[0] > 6 {
				return c, fmt.Errorf("type %q: the fractional-second precision is at most 6", t)
			}
			if args[0] > 0 {
				c.mysql = fmt.Sprintf("%s(%d)", base, args[0])
			}
		}
		return c, nil
	}
	return c, fmt.Errorf("type %q is not known; types are %s", t, csvTypeNames)
}

// --- Value parsers. They take the field's bytes and allocate nothing. ---

// trimBlank drops spaces and tabs around a non-string value.
func trimBlank(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseInt reads [+-]digits into an int64.
func parseInt(b []byte) (int64, bool) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg, i = b[0] == '-', 1
	}
	if i == len(b) || len(b)-i > 19 {
		return 0, false
	}
	var u uint64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			return 0, false
		}
		u = u*10 + uint64(d)
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// isFloatSyntax reports whether b is a plain decimal number: [+-]digits[.digits][e[+-]digits]
// with at least one digit before the exponent (no inf, nan, hex or underscores).
func isFloatSyntax(b []byte) bool {
	i := 0
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		i++
	}
	digits := 0
	for ; i < len(b) && b[i]-'0' <= 9; i++ {
		digits++
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && b[i]-'0' <= 9; i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '-' || b[i] == '+') {
			i++
		}
		e := i
		for ; i < len(b) && b[i]-'0' <= 9; i++ {
		}
		if i == e {
			return false
		}
	}
	return i == len(b)
}

// leadingZero reports a number written with a superfluous leading zero ("007", "-01.5"),
// which is more likely a code (a ZIP code, an account number) than a quantity.
func leadingZero(b []byte) bool {
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		b = b[1:]
	}
	return len(b) > 1 && b[0] == '0' && b[1]-'0' <= 9
}

func parseBool(b []byte, any bool) (v, ok bool) {
	switch len(b) {
	case 4:
		if b[0]|0x20 == 't' && b[1]|0x20 == 'r' && b[2]|0x20 == 'u' && b[3]|0x20 == 'e' {
			return true, true
		}
	case 5:
		if b[0]|0x20 == 'f' && b[1]|0x20 == 'a' && b[2]|0x20 == 'l' && b[3]|0x20 == 's' && b[4]|0x20 == 'e' {
			return false, true
		}
	}
	if any && len(b) <= 3 {
		var low [3]byte
		for i, c := range b {
			low[i] = c | 0x20
		}
		switch string(low[:len(b)]) {
		case "1", "t", "y", "yes", "on":
			return true, true
		case "0", "f", "n", "no", "off":
			return false, true
		}
	}
	return false, false
}

func digits2(b []byte) (int, bool) {
	d0, d1 := b[0]-'0', b[1]-'0'
	return int(d0)*10 + int(d1), d0 <= 9 && d1 <= 9
}

// dayCache remembers the last date a column held: consecutive rows usually share it.
type dayCache struct {
	key  [10]byte
	days int32
	set  bool
}

// parseDate reads YYYY-MM-DD as days since 1970-01-01. c may be nil.
func parseDate(b []byte, c *dayCache) (int32, bool) {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return 0, false
	}
	return civilDays(b, c)
}

// civilDays reads the date in b[:10], whose dashes have been checked.
func civilDays(b []byte, c *dayCache) (int32, bool) {
	if c != nil && c.set && string(b[:10]) == string(c.key[:]) {
		return c.days, true
	}
	days, ok := civilDaysUncached(b)
	if ok && c != nil {
		copy(c.key[:], b)
		c.days, c.set = days, true
	}
	return days, ok
}

func civilDaysUncached(b []byte) (int32, bool) {
	hi, ok1 := digits2(b[0:])
	lo, ok2 := digits2(b[2:])
	m, ok3 := digits2(b[5:])
	d, ok4 := digits2(b[8:])
	y := hi*100 + lo
	if !(ok1 && ok2 && ok3 && ok4) || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is Howard Hinnant's days_from_civil.
func daysFromCivil(y, m, d int) int32 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int32(era*146097 + doe - 719468)
}

// parseTimestamp reads YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][Z|±HH[:MM]] as microseconds
// since the epoch. Without a zone the wall-clock time is read as UTC; with one, the instant
// is converted to UTC. frac is the number of fractional digits written; digits past the
// sixth are dropped. c may be nil.
func parseTimestamp(b []byte, c *dayCache) (us int64, frac int, ok bool) {
	if len(b) < 10 || b[4] != '-' || b[7] != '-' {
		return 0, 0, false
	}
	days, ok := civilDays(b, c)
	if !ok {
		return 0, 0, false
	}
	us = int64(days) * 86400e6
	if len(b) == 10 {
		return us, 0, true
	}
	if len(b) < 16 || (b[10] != ' ' && b[10] != 'T') || b[13] != ':' {
		return 0, 0, false
	}
	h, ok1 := digits2(b[11:])
	mi, ok2 := digits2(b[14:])
	if !ok1 || !ok2 || h > 23 || mi > 59 {
		return 0, 0, false
	}
	sec := 0
	i := 16
	if i < len(b) && b[i] == ':' {
		if len(b) < 19 {
			return 0, 0, false
		}
		s, ok := digits2(b[17:])
		if !ok || s > 59 {
			return 0, 0, false
		}
		sec, i = s, 19
	}
	us += (int64(h)*3600 + int64(mi)*60 + int64(sec)) * 1e6
	if i < len(b) && b[i] == '.' {
		i++
		var f int64
		n := 0
		for ; i < len(b) && b[i]-'0' <= 9; i++ {
			if n < 6 {
				f = f*10 + int64(b[i]-'0')
			}
			n++
		}
		if n == 0 {
			return 0, 0, false
		}
		for k := min(n, 6); k < 6; k++ {
			f *= 10
		}
		us += f
		frac = n
	}
	if i == len(b) {
		return us, frac, true
	}
	switch b[i] {
	case 'Z', 'z':
		return us, frac, i+1 == len(b)
	case '+', '-':
		sign := int64(1)
		if b[i] == '-' {
			sign = -1
		}
		z := b[i+1:]
		if len(z) < 2 {
			return 0, 0, false
		}
		zh, ok := digits2(z)
		zm, okm := 0, true
		switch {
		case len(z) == 2:
		case len(z) == 4:
			zm, okm = digits2(z[2:])
		case len(z) == 5 && z[2] == ':':
			zm, okm = digits2(z[3:])
		default:
			okm = false
		}
		if !ok || !okm || zh > 18 || zm > 59 {
			return 0, 0, false
		}
		return us - sign*(int64(zh)*3600+int64(zm)*60)*1e6, frac, true
	}
	return 0, 0, false
}
