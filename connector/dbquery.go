package connector

// This file holds what the MySQL and PostgreSQL sources share: their options, URL parsing
// and redaction, the batch loop, and parsers for the text forms both servers send
// (decimals, dates, date-times). Values are parsed straight into Arrow builders, one
// appender per column chosen from the column's type, so a row costs no allocation per value.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehoused/lakehoused/txlog"
)

// DBOptions tunes QueryMySQL and QueryPostgres.
type DBOptions struct {
	// ConnectTimeout bounds dialing and authentication together; default 10 s.
	ConnectTimeout time.Duration
}

const defaultConnectTimeout = 10 * time.Second

func (o DBOptions) connectTimeout() time.Duration {
	if o.ConnectTimeout > 0 {
		return o.ConnectTimeout
	}
	return defaultConnectTimeout
}

// RedactURL returns rawURL with any password replaced by "***": the one in the user-info
// part and a password= query parameter. It works on malformed URLs too, since those are
// the ones that end up in error messages.
func RedactURL(rawURL string) string {
	s := rawURL
	if i := strings.Index(s, "://"); i >= 0 {
		head, rest := s[:i+3], s[i+3:]
		// The user-info part ends at the last '@' before the query: a password may hold
		// '/' or '@' itself when the user did not escape it.
		end := len(rest)
		if q := strings.IndexAny(rest, "?#"); q >= 0 {
			end = q
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
			if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
				rest = rest[:colon+1] + "***" + rest[at:]
			}
		}
		s = head + rest
	}
	if q := strings.IndexByte(s, '?'); q >= 0 {
		params := strings.Split(s[q+1:], "&")
		for i, p := range params {
			if k, _, ok := strings.Cut(p, "="); ok && strings.EqualFold(k, "password") {
				params[i] = k + "=***"
			}
		}
		s = s[:q+1] + strings.Join(params, "&")
	}
	return s
}

// dbURL is a parsed mysql:// or postgres:// URL.
type dbURL struct {
	user, password string
	hasPassword    bool
	host, port     string
	database       string
	params         url.Values
}

func (u dbURL) addr() string { return net.JoinHostPort(u.host, u.port) }

// parseDBURL reads scheme://user:password@host:port/database?params. Only the parameters in
// allowed are accepted: the URL comes from SQL users, and driver parameters that name local
// files (TLS keys, password files) or let a server read the daemon's files must not be
// reachable through it.
func parseDBURL(rawURL string, schemes []string, defaultPort, form string, allowed []string) (dbURL, error) {
	bad := func(why string) (dbURL, error) {
		return dbURL{}, fmt.Errorf("malformed URL %s: %s; expected %s", RedactURL(rawURL), why, form)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return bad(err.Error())
	}
	if !slices.Contains(schemes, strings.ToLower(u.Scheme)) {
		return bad(fmt.Sprintf("the scheme must be %s", strings.Join(schemes, " or ")))
	}
	if u.Opaque != "" || u.Host == "" {
		return bad("no host")
	}
	out := dbURL{host: u.Hostname(), port: u.Port(), params: u.Query()}
	if out.host == "" || strings.ContainsAny(out.host, "/\\") {
		return bad(fmt.Sprintf("invalid host %q", out.host))
	}
	if out.port == "" {
		out.port = defaultPort
	} else if n, err := strconv.Atoi(out.port); err != nil || n < 1 || n > 65535 {
		return bad(fmt.Sprintf("invalid port %q", out.port))
	}
	if u.User != nil {
		out.user = u.User.Username()
		out.password, out.hasPassword = u.User.Password()
	}
	if out.user == "" {
		return bad("no user name")
	}
	out.database = strings.TrimPrefix(u.Path, "/")
	if strings.Contains(out.database, "/") {
		return bad(fmt.Sprintf("invalid database name %q", out.database))
	}
	for k := range out.params {
		if !slices.Contains(allowed, k) {
			return bad(fmt.Sprintf("parameter %q is not supported; supported parameters are %s", k, strings.Join(allowed, ", ")))
		}
	}
	return out, nil
}

// dbStream is the part of a database Source that does not depend on the server: schema,
// progress and the loop that fills one batch.
type dbStream struct {
	fields  []txlog.StructField
	schema  *arrow.Schema
	builder *array.RecordBuilder
	rows    int64 // rows returned in batches
	read    int64 // rows read from the server, the one being parsed included (for errors)
	bytes   int64
	done    bool
	err     error // sticky: after a failed batch the stream stays failed
}

func newDBStream(fields []txlog.StructField) (*dbStream, error) {
	uniqueFieldNames(fields)
	schema, err := ArrowSchemaOf(fields)
	if err != nil {
		return nil, err
	}
	return &dbStream{fields: fields, schema: schema, builder: array.NewRecordBuilder(memory.DefaultAllocator, schema)}, nil
}

func (s *dbStream) Fields() []txlog.StructField { return s.fields }
func (s *dbStream) Schema() *arrow.Schema       { return s.schema }
func (s *dbStream) Progress() Progress          { return Progress{Rows: s.rows, Bytes: s.bytes} }

// fill reads rows with readRow (which appends one row to the builders and reports false at
// the end of the result) until a batch is full. It checks ctx between rows only every so
// often: the check costs more than reading a small row.
func (s *dbStream) fill(ctx context.Context, readRow func() (bool, error)) (arrow.RecordBatch, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.done {
		return nil, io.EOF
	}
	n := 0
	for n < BatchRows {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				s.err = err
				return nil, err
			}
		}
		s.read++
		ok, err := readRow()
		if err != nil {
			s.err = err
			return nil, err
		}
		if !ok {
			s.done = true
			break
		}
		n++
	}
	if n == 0 {
		return nil, io.EOF
	}
	s.rows += int64(n)
	return s.builder.NewRecordBatch(), nil
}

// next is Next for every server: it reads a batch with readRow, and a ctx cancelled while
// the server is waited on ends the query through cancel. what names the result for errors.
func (s *dbStream) next(ctx context.Context, closed bool, what string, cancel context.CancelFunc, readRow func() (bool, error)) (arrow.RecordBatch, error) {
	if closed {
		return nil, fmt.Errorf("%s is closed", what)
	}
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	rec, err := s.fill(ctx, readRow)
	if err != nil && err != io.EOF && ctx.Err() != nil {
		s.err = ctx.Err()
		return nil, s.err
	}
	return rec, err
}

func (s *dbStream) release() {
	if s.builder != nil {
		s.builder.Release()
		s.builder = nil
	}
}

// uniqueFieldNames renames result columns whose names repeat (SELECT a.id, b.id), which a
// Delta schema cannot hold: the second "id" becomes "id_2", and so on. Delta names are
// unique ignoring case, so the check is too.
func uniqueFieldNames(fields []txlog.StructField) {
	seen := map[string]bool{}
	for i := range fields {
		base := fields[i].Name
		if base == "" {
			base = fmt.Sprintf("col%d", i+1)
		}
		name := base
		for k := 2; seen[strings.ToLower(name)]; k++ {
			name = fmt.Sprintf("%s_%d", base, k)
		}
		seen[strings.ToLower(name)] = true
		fields[i].Name = name
	}
}

// dbField builds a result column's Delta field.
func dbField(name, deltaType, mysqlType string, nullable, isJSON bool) txlog.StructField {
	md := map[string]any{MetaMySQLType: mysqlType}
	if isJSON {
		md[MetaJSON] = true
	}
	return txlog.StructField{Name: name, Type: txlog.DataType{Name: deltaType}, Nullable: nullable, Metadata: md}
}

// decimalTypeName is the Delta type for DECIMAL(p,s); wider than Delta allows goes to text.
func decimalTypeName(p, s int) (string, bool) {
	if p < 1 || p > 38 || s < 0 || s > p {
		return "string", false
	}
	return fmt.Sprintf("decimal(%d,%d)", p, s), true
}

// parseDecimalText reads a plain decimal number ("-123.45", no exponent) as an unscaled
// value with the given scale. Fraction digits beyond the scale are an error, not rounding:
// the servers send exactly the column's scale, so more means the column is not what its
// type said.
func parseDecimalText(b []byte, prec, scale int32) (decimal128.Num, error) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	intPart, frac, _ := bytes.Cut(b, []byte{'.'})
	if len(intPart)+len(frac) == 0 || int32(len(frac)) > scale {
		return decimal128.Num{}, fmt.Errorf("%q is not a decimal(%d,%d) value", b, prec, scale)
	}
	var n decimal128.Num
	digits := 0
	var acc uint64
	accDigits := 0
	flush := func() {
		if accDigits > 0 {
			n = n.Mul(decimal128.FromU64(pow10[accDigits])).Add(decimal128.FromU64(acc))
			acc, accDigits = 0, 0
		}
	}
	add := func(c byte) bool {
		if c < '0' || c > '9' {
			return false
		}
		if digits > 0 || c != '0' {
			digits++
		}
		acc = acc*10 + uint64(c-'0')
		if accDigits++; accDigits == 19 {
			flush()
		}
		return true
	}
	for i := 0; i < len(intPart); i++ {
		if !add(intPart[i]) {
			return decimal128.Num{}, fmt.Errorf("%q is not a decimal(%d,%d) value", b, prec, scale)
		}
	}
	for i := 0; i < len(frac); i++ {
		if !add(frac[i]) {
			return decimal128.Num{}, fmt.Errorf("%q is not a decimal(%d,%d) value", b, prec, scale)
		}
	}
	for i := int32(len(frac)); i < scale; i++ {
		add('0')
	}
	flush()
	if digits > int(prec) {
		return decimal128.Num{}, fmt.Errorf("%q does not fit decimal(%d,%d)", b, prec, scale)
	}
	if neg {
		n = n.Negate()
	}
	return n, nil
}

func digitsAt(b []byte, i, n int) (int, bool) {
	if i+n > len(b) {
		return 0, false
	}
	v := 0
	for _, c := range b[i : i+n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// parseDateText reads "YYYY-MM-DD" as days since the epoch. ok is false for dates no
// calendar has ("0000-00-00", "2020-02-30"), which MySQL stores under lenient SQL modes
// and which become NULL.
func parseDateText(b []byte) (days int64, ok bool, err error) {
	y, ok1 := digitsAt(b, 0, 4)
	m, ok2 := digitsAt(b, 5, 2)
	d, ok3 := digitsAt(b, 8, 2)
	if !ok1 || !ok2 || !ok3 || b[4] != '-' || b[7] != '-' {
		return 0, false, fmt.Errorf("%q is not a date (YYYY-MM-DD)", b)
	}
	if y == 0 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false, nil
	}
	return int64(daysFromCivil(y, m, d)), true, nil
}

// parseDateTimeText reads "YYYY-MM-DD[ HH:MM:SS[.ffffff]]" as microseconds since the epoch,
// the wall-clock time taken as UTC. ok is false for impossible dates, as in parseDateText.
func parseDateTimeText(b []byte) (micros int64, ok bool, err error) {
	days, ok, err := parseDateText(b)
	if err != nil || !ok {
		return 0, ok, err
	}
	secs := days * 86400
	if len(b) > 10 {
		hh, ok1 := digitsAt(b, 11, 2)
		mm, ok2 := digitsAt(b, 14, 2)
		ss, ok3 := digitsAt(b, 17, 2)
		if !ok1 || !ok2 || !ok3 || (b[10] != ' ' && b[10] != 'T') || b[13] != ':' || b[16] != ':' {
			return 0, false, fmt.Errorf("%q is not a date and time (YYYY-MM-DD HH:MM:SS)", b)
		}
		secs += int64(hh*3600 + mm*60 + ss)
		micros = secs * 1e6
		if len(b) > 19 {
			if b[19] != '.' || len(b) > 26 {
				return 0, false, fmt.Errorf("%q is not a date and time (YYYY-MM-DD HH:MM:SS.ffffff)", b)
			}
			f, okf := digitsAt(b, 20, len(b)-20)
			if !okf {
				return 0, false, fmt.Errorf("%q is not a date and time (YYYY-MM-DD HH:MM:SS.ffffff)", b)
			}
			micros += int64(f) * int64(pow10[6-(len(b)-20)])
		}
		return micros, true, nil
	}
	return secs * 1e6, true, nil
}

// connectError words a failure to reach a server: the host and port, how long we waited,
// and what to check.
func connectError(kind, addr string, timeout time.Duration, err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%s: cannot connect to %s within %s; check the host and port, and that the server is up and reachable from here", kind, addr, timeout)
	}
	// pgconn joins the errors of its attempts (TLS, then plain) with newlines.
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	return fmt.Errorf("%s: cannot connect to %s: %s; check the host and port, and that the server is up and reachable from here", kind, addr, msg)
}
