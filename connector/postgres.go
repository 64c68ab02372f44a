package connector

// QueryPostgres streams a query's result from a PostgreSQL server through pgx's wire layer
// (pgconn): Parse/Describe gives the columns before anything runs, then Bind/Execute asks
// for each column in the format cheapest to turn into Arrow — binary for numbers, booleans,
// dates, timestamps and bytea (fixed-width big-endian, no parsing), text for the rest
// (numeric, whose text parses straight into a decimal; strings, which are text in both
// formats; arrays, rewritten as JSON). Rows are read as raw byte slices of the connection's
// buffer, so no value is boxed or copied before it reaches its builder.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/lakehoused/lakehoused/txlog"
)

const postgresURLForm = "postgres://user:password@host:port/database?sslmode=prefer (or postgresql://; port defaults to 5432)"

// postgresURLParams are the URL parameters QueryPostgres accepts. Parameters that name
// local files (sslkey, sslcert, sslrootcert, passfile, service) are left out: the URL comes
// from SQL users, and the daemon's files are not theirs to point at.
var postgresURLParams = []string{"sslmode", "application_name", "search_path", "target_session_attrs"}

// postgresCancelTimeout bounds the cancel request Close sends for a query still running.
const postgresCancelTimeout = 2 * time.Second

// Days and microseconds between the Unix epoch and PostgreSQL's (2000-01-01), in which
// binary dates and timestamps count.
const (
	pgEpochDays   = 10957
	pgEpochMicros = pgEpochDays * 86400 * 1e6
)

// QueryPostgres runs query on the server that rawURL names
// (postgres://user:pass@host:port/db?sslmode=...; postgresql:// too; port default 5432)
// and streams its result. The session time zone is UTC.
//
// Unconstrained numeric columns (numeric without (p,s)) become double, as in DuckDB: their
// scale differs from row to row, so no one decimal type holds them; values beyond about 15
// significant digits lose precision. Cast to numeric(p,s) or text in the query to keep them
// exact. Infinite dates and timestamps become NULL.
func QueryPostgres(ctx context.Context, rawURL, query string, opt DBOptions) (Source, error) {
	u, err := parseDBURL(rawURL, []string{"postgres", "postgresql"}, "5432", postgresURLForm, postgresURLParams)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	// pgconn reads its defaults from the environment and ~/.pgpass; only host, port, user
	// and database go through its parser, and the password is set from the URL alone so
	// that a user's URL never logs in with the daemon's own credentials.
	conninfo := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=%s",
		pgQuote(u.host), u.port, pgQuote(u.user), pgQuote(orDefault(u.database, u.user)), pgQuote(orDefault(u.params.Get("sslmode"), "prefer")))
	if v := u.params.Get("target_session_attrs"); v != "" {
		conninfo += " target_session_attrs=" + pgQuote(v)
	}
	cfg, err := pgconn.ParseConfig(conninfo)
	if err != nil {
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) && pe.Unwrap() != nil {
			err = pe.Unwrap() // the wrapper repeats the connection string
		}
		return nil, fmt.Errorf("postgres: malformed URL %s: %v; expected %s", RedactURL(rawURL), err, postgresURLForm)
	}
	cfg.Password = u.password
	cfg.ConnectTimeout = opt.connectTimeout()
	cfg.RuntimeParams = map[string]string{
		"application_name": orDefault(u.params.Get("application_name"), "lakehoused"),
		"timezone":         "UTC",
		"datestyle":        "ISO, YMD",
		"intervalstyle":    "postgres",
		"client_encoding":  "UTF8",
	}
	if v := u.params.Get("search_path"); v != "" {
		cfg.RuntimeParams["search_path"] = v
	}
	s := &postgresSource{addr: u.addr(), user: u.user}
	if err := s.open(ctx, cfg, query); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// pgQuote quotes a value for a key=value connection string.
func pgQuote(v string) string {
	out := []byte{'\''}
	for i := 0; i < len(v); i++ {
		if v[i] == '\'' || v[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, v[i])
	}
	return string(append(out, '\''))
}

type postgresSource struct {
	*dbStream
	addr, user string
	conn       *pgconn.PgConn
	result     *pgconn.ResultReader
	appenders  []postgresAppender
	cancel     context.CancelFunc
	closed     bool
}

// postgresAppender appends one non-NULL value in the format its column was asked for.
type postgresAppender func(v []byte) error

func (s *postgresSource) open(ctx context.Context, cfg *pgconn.Config, query string) error {
	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	conn, err := pgconn.ConnectConfig(cctx, cfg)
	if err != nil {
		return s.connectError(cfg.ConnectTimeout, err)
	}
	s.conn = conn

	desc, err := conn.Prepare(ctx, "", query, nil)
	if err != nil {
		return fmt.Errorf("postgres: query on %s failed: %w", s.addr, err)
	}
	if len(desc.ParamOIDs) > 0 {
		return fmt.Errorf("postgres: the query for %s has %d parameters ($1…); write the values into the query", s.addr, len(desc.ParamOIDs))
	}
	if len(desc.Fields) == 0 {
		return fmt.Errorf("postgres: the statement run on %s returns no rows; give a query that does, such as SELECT", s.addr)
	}
	types := pgtype.NewMap()
	fields := make([]txlog.StructField, len(desc.Fields))
	formats := make([]int16, len(desc.Fields))
	for i, fd := range desc.Fields {
		fields[i], formats[i] = postgresField(fd, types)
	}
	if s.dbStream, err = newDBStream(fields); err != nil {
		return fmt.Errorf("postgres: query on %s: %w", s.addr, err)
	}
	s.appenders = make([]postgresAppender, len(fields))
	for i, fd := range desc.Fields {
		s.appenders[i] = postgresAppenderFor(s.builder.Field(i), fd, types)
	}
	// As for MySQL: the result outlives this call, a cancelled ctx still stops the query.
	qctx, qcancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = qcancel
	stop := context.AfterFunc(ctx, qcancel)
	defer stop()
	s.result = conn.ExecPrepared(qctx, "", nil, nil, formats)
	return nil
}

func (s *postgresSource) connectError(timeout time.Duration, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return fmt.Errorf("postgres: cannot log in to %s as user %q: %s; check the user name and password in the URL", s.addr, s.user, pe.Message)
		case "3D000": // invalid_catalog_name
			return fmt.Errorf("postgres: cannot log in to %s as user %q: %s; check the database in the URL", s.addr, s.user, pe.Message)
		}
		return fmt.Errorf("postgres: cannot log in to %s as user %q: %s (SQLSTATE %s)", s.addr, s.user, pe.Message, pe.Code)
	}
	// A ConnectError repeats the configuration; what failed is the cause.
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		err = ce.Unwrap()
	}
	return connectError("postgres", s.addr, timeout, err)
}

// Next reads up to BatchRows rows. A ctx cancelled while it waits for the server ends the
// query and the connection.
func (s *postgresSource) Next(ctx context.Context) (arrow.RecordBatch, error) {
	return s.next(ctx, s.closed, "postgres: the result from "+s.addr, s.cancel, s.readRow)
}

func (s *postgresSource) readRow() (bool, error) {
	if !s.result.NextRow() {
		_, err := s.result.Close()
		if err != nil {
			return false, fmt.Errorf("postgres: query on %s failed: %w", s.addr, err)
		}
		return false, nil
	}
	for i, v := range s.result.Values() {
		if v == nil {
			s.builder.Field(i).AppendNull()
			continue
		}
		if err := s.appenders[i](v); err != nil {
			return false, fmt.Errorf("postgres: result from %s, row %d, column %q: %w", s.addr, s.read, s.fields[i].Name, err)
		}
		s.bytes += int64(len(v))
	}
	return true, nil
}

// Close drops the connection. Mid-stream it first sends the server a cancel request (the
// query may still be computing rows) and then closes the socket without reading the rest.
func (s *postgresSource) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.dbStream != nil {
		defer s.release()
	}
	if s.conn == nil {
		return nil
	}
	if s.result != nil && (s.dbStream == nil || !s.done) {
		ctx, cancel := context.WithTimeout(context.Background(), postgresCancelTimeout)
		s.conn.CancelRequest(ctx) // best effort: the server also stops once the socket is gone
		cancel()
		s.cancel()
		s.conn.Close(context.Background())
		return nil
	}
	if s.cancel != nil {
		defer s.cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), postgresCancelTimeout)
	defer cancel()
	return s.conn.Close(ctx)
}

// postgresField maps a result column to a Delta field and the format to ask for.
func postgresField(fd pgconn.FieldDescription, types *pgtype.Map) (txlog.StructField, int16) {
	const text, bin = pgtype.TextFormatCode, pgtype.BinaryFormatCode
	name, mod := fd.Name, fd.TypeModifier
	f := func(delta, mysqlType string, format int16) (txlog.StructField, int16) {
		return dbField(name, delta, mysqlType, true, false), format
	}
	withLen := func(t string, n int32) string {
		if n > 0 {
			return fmt.Sprintf("%s(%d)", t, n)
		}
		return "longtext"
	}
	fractional := func(t string) string {
		if mod >= 0 && mod < 6 {
			return fmt.Sprintf("%s(%d)", t, mod)
		}
		return t + "(6)"
	}
	switch fd.DataTypeOID {
	case pgtype.BoolOID:
		return f("boolean", "tinyint(1)", bin)
	case pgtype.Int2OID:
		return f("short", "smallint", bin)
	case pgtype.Int4OID:
		return f("integer", "int", bin)
	case pgtype.Int8OID:
		return f("long", "bigint", bin)
	case pgtype.OIDOID:
		return f("long", "int unsigned", bin)
	case pgtype.Float4OID:
		return f("float", "float", bin)
	case pgtype.Float8OID:
		return f("double", "double", bin)
	case pgtype.NumericOID:
		if mod < 4 {
			return f("double", "double", text)
		}
		p, sc := int((mod-4)>>16), int(int16((mod-4)&0xffff)<<5>>5) // scale is 11-bit signed (PG 15+)
		if t, ok := decimalTypeName(p, sc); ok {
			return f(t, fmt.Sprintf("decimal(%d,%d)", p, sc), text)
		}
		if sc >= 0 && sc <= 30 && p <= 65 {
			return f("string", fmt.Sprintf("decimal(%d,%d)", p, sc), text)
		}
		return f("string", "longtext", text)
	case pgtype.DateOID:
		return f("date", "date", bin)
	case pgtype.TimestampOID:
		return f("timestamp", fractional("datetime"), bin)
	case pgtype.TimestamptzOID:
		// Shown as DATETIME: MySQL's TIMESTAMP stops in 2038, PostgreSQL's does not.
		return f("timestamp", fractional("datetime"), bin)
	case pgtype.TimeOID:
		return f("string", fractional("time"), text)
	case pgtype.ByteaOID:
		return f("binary", "longblob", bin)
	case pgtype.BitOID:
		return f("binary", fmt.Sprintf("varbinary(%d)", max((mod+7)/8, 1)), bin)
	case pgtype.VarbitOID:
		return f("binary", "longblob", bin)
	case pgtype.TextOID, pgtype.XMLOID:
		return f("string", "longtext", text)
	case pgtype.VarcharOID:
		return f("string", withLen("varchar", mod-4), text)
	case pgtype.BPCharOID:
		return f("string", withLen("char", mod-4), text)
	case pgtype.NameOID:
		return f("string", "varchar(63)", text)
	case pgtype.QCharOID:
		return f("string", "char(1)", text)
	case pgtype.UUIDOID:
		return f("string", "char(36)", text)
	case pgtype.InetOID, pgtype.CIDROID:
		return f("string", "varchar(43)", text)
	case pgtype.JSONOID, pgtype.JSONBOID:
		return dbField(name, "string", "json", true, true), text
	}
	if _, ok := pgArrayElement(fd.DataTypeOID, types); ok {
		return dbField(name, "string", "json", true, true), text
	}
	return f("string", "longtext", text) // interval, timetz, money, enums, ranges, …
}

// pgArrayElement reports the element type of an array type whose text form pgArrayJSON
// can read (elements separated by commas: every built-in type but box).
func pgArrayElement(oid uint32, types *pgtype.Map) (uint32, bool) {
	t, ok := types.TypeForOID(oid)
	if !ok {
		return 0, false
	}
	ac, ok := t.Codec.(*pgtype.ArrayCodec)
	if !ok || ac.ElementType == nil || (ac.Delimiter != 0 && ac.Delimiter != ',') {
		return 0, false
	}
	return ac.ElementType.OID, true
}

func postgresAppenderFor(b array.Builder, fd pgconn.FieldDescription, types *pgtype.Map) postgresAppender {
	size := func(v []byte, n int) error {
		if len(v) != n {
			return fmt.Errorf("binary value of %d bytes, want %d", len(v), n)
		}
		return nil
	}
	switch b := b.(type) {
	case *array.BooleanBuilder:
		return func(v []byte) error {
			if err := size(v, 1); err != nil {
				return err
			}
			b.Append(v[0] != 0)
			return nil
		}
	case *array.Int16Builder:
		return func(v []byte) error {
			if err := size(v, 2); err != nil {
				return err
			}
			b.Append(int16(binary.BigEndian.Uint16(v)))
			return nil
		}
	case *array.Int32Builder:
		return func(v []byte) error {
			if err := size(v, 4); err != nil {
				return err
			}
			b.Append(int32(binary.BigEndian.Uint32(v)))
			return nil
		}
	case *array.Int64Builder:
		if fd.DataTypeOID == pgtype.OIDOID {
			return func(v []byte) error {
				if err := size(v, 4); err != nil {
					return err
				}
				b.Append(int64(binary.BigEndian.Uint32(v)))
				return nil
			}
		}
		return func(v []byte) error {
			if err := size(v, 8); err != nil {
				return err
			}
			b.Append(int64(binary.BigEndian.Uint64(v)))
			return nil
		}
	case *array.Float32Builder:
		return func(v []byte) error {
			if err := size(v, 4); err != nil {
				return err
			}
			b.Append(math.Float32frombits(binary.BigEndian.Uint32(v)))
			return nil
		}
	case *array.Float64Builder:
		if fd.DataTypeOID == pgtype.NumericOID { // unconstrained numeric, sent as text
			return func(v []byte) error {
				x, err := strconv.ParseFloat(string(v), 64)
				if err != nil && !errors.Is(err, strconv.ErrRange) {
					return fmt.Errorf("%q is not a number", v)
				}
				b.Append(x)
				return nil
			}
		}
		return func(v []byte) error {
			if err := size(v, 8); err != nil {
				return err
			}
			b.Append(math.Float64frombits(binary.BigEndian.Uint64(v)))
			return nil
		}
	case *array.Decimal128Builder:
		dt := b.Type().(*arrow.Decimal128Type)
		return func(v []byte) error {
			n, err := parseDecimalText(v, dt.Precision, dt.Scale)
			if err != nil {
				if s := string(v); s == "NaN" || s == "Infinity" || s == "-Infinity" {
					return fmt.Errorf("%s cannot be stored as decimal(%d,%d); cast the column to float8 or text in the query", s, dt.Precision, dt.Scale)
				}
				return err
			}
			b.Append(n)
			return nil
		}
	case *array.Date32Builder:
		return func(v []byte) error {
			if err := size(v, 4); err != nil {
				return err
			}
			d := int32(binary.BigEndian.Uint32(v))
			if d == math.MaxInt32 || d == math.MinInt32 { // infinity, -infinity
				b.AppendNull()
				return nil
			}
			b.Append(arrow.Date32(d + pgEpochDays))
			return nil
		}
	case *array.TimestampBuilder:
		return func(v []byte) error {
			if err := size(v, 8); err != nil {
				return err
			}
			us := int64(binary.BigEndian.Uint64(v))
			if us == math.MaxInt64 || us == math.MinInt64 {
				b.AppendNull()
				return nil
			}
			b.Append(arrow.Timestamp(us + pgEpochMicros))
			return nil
		}
	case *array.BinaryBuilder:
		if oid := fd.DataTypeOID; oid == pgtype.BitOID || oid == pgtype.VarbitOID {
			return func(v []byte) error { // int32 bit count, then the bits, first one high
				if len(v) < 4 {
					return fmt.Errorf("binary bit string of %d bytes", len(v))
				}
				b.Append(v[4:])
				return nil
			}
		}
		return func(v []byte) error {
			b.Append(v)
			return nil
		}
	case *array.StringBuilder:
		if elem, ok := pgArrayElement(fd.DataTypeOID, types); ok {
			kind := pgJSONKind(elem)
			var buf []byte
			return func(v []byte) error {
				var err error
				if buf, err = pgArrayJSON(buf[:0], v, kind); err != nil {
					return err
				}
				b.BinaryBuilder.Append(buf)
				return nil
			}
		}
		if fd.DataTypeOID == pgtype.BPCharOID {
			// char(n) pads with spaces; MySQL's CHAR shows values without them.
			return func(v []byte) error {
				b.BinaryBuilder.Append(bytes.TrimRight(v, " "))
				return nil
			}
		}
		return func(v []byte) error {
			b.BinaryBuilder.Append(v)
			return nil
		}
	}
	return func([]byte) error { return fmt.Errorf("no reader for type OID %d", fd.DataTypeOID) }
}

// How an array element's text becomes JSON.
type pgJSONElem int

const (
	pgJSONString pgJSONElem = iota
	pgJSONNumber            // the text is a JSON number, except NaN and ±Infinity
	pgJSONBool              // t or f
	pgJSONRaw               // json and jsonb elements: the text is JSON
)

func pgJSONKind(elem uint32) pgJSONElem {
	switch elem {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID, pgtype.Float4OID, pgtype.Float8OID, pgtype.NumericOID:
		return pgJSONNumber
	case pgtype.BoolOID:
		return pgJSONBool
	case pgtype.JSONOID, pgtype.JSONBOID:
		return pgJSONRaw
	}
	return pgJSONString
}

// pgArrayJSON appends the JSON form of a PostgreSQL array in text format to dst:
// '{1,NULL,3}' → [1,null,3], '{{"a b",c}}' → [["a b","c"]]. A '[lower:upper]=' prefix
// (arrays not starting at 1) is dropped.
func pgArrayJSON(dst, src []byte, kind pgJSONElem) ([]byte, error) {
	if len(src) > 0 && src[0] == '[' {
		for i, c := range src {
			if c == '=' {
				src = src[i+1:]
				break
			}
		}
	}
	p := pgArrayParser{src: src, kind: kind}
	dst, err := p.array(dst)
	if err == nil && p.pos != len(src) {
		err = errors.New("text after the array's closing brace")
	}
	if err != nil {
		return nil, fmt.Errorf("array %q: %w", src, err)
	}
	return dst, nil
}

type pgArrayParser struct {
	src  []byte
	pos  int
	kind pgJSONElem
	elem []byte // scratch for unquoted elements
}

func (p *pgArrayParser) array(dst []byte) ([]byte, error) {
	if p.pos >= len(p.src) || p.src[p.pos] != '{' {
		return nil, errors.New("expected '{'")
	}
	p.pos++
	dst = append(dst, '[')
	for first := true; ; first = false {
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, errors.New("unterminated array")
		}
		if first && p.src[p.pos] == '}' {
			p.pos++
			return append(dst, ']'), nil
		}
		if !first {
			dst = append(dst, ',')
		}
		var err error
		switch p.src[p.pos] {
		case '{':
			dst, err = p.array(dst)
		case '"':
			dst, err = p.quoted(dst)
		default:
			dst, err = p.unquoted(dst)
		}
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, errors.New("unterminated array")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return append(dst, ']'), nil
		default:
			return nil, fmt.Errorf("unexpected %q", p.src[p.pos])
		}
	}
}

func (p *pgArrayParser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

func (p *pgArrayParser) quoted(dst []byte) ([]byte, error) {
	p.pos++ // opening quote
	p.elem = p.elem[:0]
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch c {
		case '\\':
			if p.pos >= len(p.src) {
				return nil, errors.New("unterminated string")
			}
			p.elem = append(p.elem, p.src[p.pos])
			p.pos++
		case '"':
			return p.emit(dst, p.elem), nil
		default:
			p.elem = append(p.elem, c)
		}
	}
	return nil, errors.New("unterminated string")
}

func (p *pgArrayParser) unquoted(dst []byte) ([]byte, error) {
	start := p.pos
	for p.pos < len(p.src) && p.src[p.pos] != ',' && p.src[p.pos] != '}' {
		p.pos++
	}
	v := p.src[start:p.pos]
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	if len(v) == 4 && (string(v) == "NULL" || string(v) == "null") {
		return append(dst, "null"...), nil
	}
	return p.emit(dst, v), nil
}

func (p *pgArrayParser) emit(dst, v []byte) []byte {
	switch p.kind {
	case pgJSONNumber:
		if s := string(v); s != "NaN" && s != "Infinity" && s != "-Infinity" && len(v) > 0 {
			return append(dst, v...)
		}
	case pgJSONBool:
		switch string(v) {
		case "t":
			return append(dst, "true"...)
		case "f":
			return append(dst, "false"...)
		}
	case pgJSONRaw:
		if len(v) > 0 {
			return append(dst, v...)
		}
	}
	return appendJSONString(dst, v)
}
