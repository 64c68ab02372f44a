package connector

// QueryMySQL streams a query's result from a MySQL or MariaDB server. It talks to
// go-sql-driver/mysql below database/sql: one driver connection, the text protocol, and
// driver.Rows.Next filling a reused []driver.Value whose strings are slices of the packet
// buffer, parsed straight into Arrow builders. That is the cheapest path the driver offers
// (database/sql would copy every value into sql.RawBytes first) and it keeps the connection
// in our hands, so Close can drop it mid-stream.

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/go-sql-driver/mysql"

	"github.com/lakehoused/lakehoused/txlog"
)

const mysqlURLForm = "mysql://user:password@host:port/database (port defaults to 3306)"

// mysqlURLParams are the URL parameters QueryMySQL accepts. Driver options that read local
// files (allowAllFiles lets the server ask for any file of ours) or change how values are
// encoded (parseTime, loc, charset) are left out.
var mysqlURLParams = []string{"tls", "allowCleartextPasswords"}

// mysqlKillTimeout bounds the extra connection Close opens to stop a query still running.
const mysqlKillTimeout = 2 * time.Second

// QueryMySQL runs query on the server that rawURL names
// (mysql://user:pass@host:port/db?tls=true; port default 3306) and streams its result.
// The session time zone is UTC, so TIMESTAMP values arrive as UTC instants.
func QueryMySQL(ctx context.Context, rawURL, query string, opt DBOptions) (Source, error) {
	u, err := parseDBURL(rawURL, []string{"mysql"}, "3306", mysqlURLForm, mysqlURLParams)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = u.user, u.password
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", u.addr(), u.database
	cfg.Loc = time.UTC
	cfg.Logger = &mysql.NopLogger{} // errors come back as values; the driver would also log them
	cfg.Timeout = opt.connectTimeout()
	if v := u.params.Get("tls"); v != "" {
		cfg.TLSConfig = v
	}
	if v := u.params.Get("allowCleartextPasswords"); v != "" {
		if cfg.AllowCleartextPasswords, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("mysql: malformed URL %s: allowCleartextPasswords must be true or false", RedactURL(rawURL))
		}
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql: URL %s: %w", RedactURL(rawURL), err)
	}
	s := &mysqlSource{addr: u.addr(), user: u.user, connector: connector}
	if err := s.open(ctx, opt.connectTimeout(), query); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

type mysqlSource struct {
	*dbStream
	addr, user string
	connector  driver.Connector
	conn       driver.Conn
	connID     uint64
	rows       driver.Rows
	dest       []driver.Value
	appenders  []mysqlAppender
	cancel     context.CancelFunc // ends the query's context: the driver then drops the connection
	closed     bool
}

// mysqlAppender appends one non-NULL value and reports how many bytes it took on the wire.
type mysqlAppender func(v driver.Value) (int, error)

func (s *mysqlSource) open(ctx context.Context, timeout time.Duration, query string) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := s.connector.Connect(cctx)
	if err != nil {
		return s.connectError(timeout, err)
	}
	s.conn = conn
	// A session variable rather than the driver's time_zone parameter: one round trip for
	// both settings. net_write_timeout is how long the server waits for us to read; a
	// consumer that spends minutes writing a batch out must not lose the stream.
	if _, err := conn.(driver.ExecerContext).ExecContext(ctx, "SET time_zone = '+00:00', net_write_timeout = 3600", nil); err != nil {
		return fmt.Errorf("mysql: setting up the session on %s: %w", s.addr, err)
	}
	if s.connID, err = s.connectionID(ctx); err != nil {
		return fmt.Errorf("mysql: setting up the session on %s: %w", s.addr, err)
	}

	// The query's context outlives this call (rows stream later, in Next) but not the
	// caller's interest: a cancelled ctx stops a query that is still running here.
	qctx, qcancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = qcancel
	stop := context.AfterFunc(ctx, qcancel)
	rows, err := conn.(driver.QueryerContext).QueryContext(qctx, query, nil)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("mysql: query on %s: %w", s.addr, ctx.Err())
		}
		return fmt.Errorf("mysql: query on %s failed: %w", s.addr, err)
	}
	s.rows = rows
	names := rows.Columns()
	if len(names) == 0 {
		return fmt.Errorf("mysql: the statement run on %s returns no rows; give a query that does, such as SELECT", s.addr)
	}
	fields := make([]txlog.StructField, len(names))
	infos := mysqlColumnInfos(rows)
	for i, name := range names {
		fields[i] = infos[i].field(name)
	}
	if s.dbStream, err = newDBStream(fields); err != nil {
		return fmt.Errorf("mysql: query on %s: %w", s.addr, err)
	}
	s.dest = make([]driver.Value, len(names))
	s.appenders = make([]mysqlAppender, len(names))
	for i := range fields {
		s.appenders[i] = mysqlAppenderFor(s.builder.Field(i), fields[i])
	}
	return nil
}

func (s *mysqlSource) connectError(timeout time.Duration, err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1045, 1044, 1698: // access denied (password; database; auth plugin)
			return fmt.Errorf("mysql: cannot log in to %s as user %q: %s; check the user name, password and database in the URL", s.addr, s.user, me.Message)
		case 1049:
			return fmt.Errorf("mysql: cannot log in to %s as user %q: %s; check the database in the URL", s.addr, s.user, me.Message)
		}
		return fmt.Errorf("mysql: cannot log in to %s as user %q: %w", s.addr, s.user, err)
	}
	return connectError("mysql", s.addr, timeout, err)
}

func (s *mysqlSource) connectionID(ctx context.Context) (uint64, error) {
	rows, err := s.conn.(driver.QueryerContext).QueryContext(ctx, "SELECT CONNECTION_ID()", nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil {
		return 0, err
	}
	switch x := v[0].(type) {
	case int64:
		return uint64(x), nil
	case uint64:
		return x, nil
	}
	return 0, fmt.Errorf("CONNECTION_ID() returned %T", v[0])
}

// Next reads up to BatchRows rows. A ctx cancelled while it waits for the server drops the
// connection (the driver cannot abandon a half-read packet any other way).
func (s *mysqlSource) Next(ctx context.Context) (arrow.RecordBatch, error) {
	return s.next(ctx, s.closed, "mysql: the result from "+s.addr, s.cancel, s.readRow)
}

func (s *mysqlSource) readRow() (bool, error) {
	err := s.rows.Next(s.dest)
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mysql: reading the result from %s: %w", s.addr, err)
	}
	for i, v := range s.dest {
		if v == nil {
			s.builder.Field(i).AppendNull()
			continue
		}
		n, err := s.appenders[i](v)
		if err != nil {
			return false, fmt.Errorf("mysql: result from %s, row %d, column %q: %w", s.addr, s.read, s.fields[i].Name, err)
		}
		s.bytes += int64(n)
	}
	return true, nil
}

// Close drops the connection. Mid-stream it first ends the query's context, which makes
// the driver close the socket at once (reading the rest would take as long as the query),
// then asks the server over a second connection to KILL the query, which may still be
// computing rows it has not sent.
func (s *mysqlSource) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	unfinished := s.rows != nil && (s.dbStream == nil || !s.done)
	if s.cancel != nil {
		if unfinished {
			s.cancel()
			s.killQuery()
		}
		defer s.cancel()
	}
	if s.rows != nil {
		s.rows.Close() // after a cancel this returns at once with the connection's error
	}
	var err error
	if s.conn != nil {
		err = s.conn.Close()
	}
	if s.dbStream != nil {
		s.release()
	}
	if unfinished {
		return nil // the connection was dropped on purpose; its error says nothing
	}
	return err
}

func (s *mysqlSource) killQuery() {
	if s.connID == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), mysqlKillTimeout)
	defer cancel()
	conn, err := s.connector.Connect(ctx)
	if err != nil {
		return // best effort: the server also stops once it finds the socket closed
	}
	defer conn.Close()
	conn.(driver.ExecerContext).ExecContext(ctx, "KILL QUERY "+strconv.FormatUint(s.connID, 10), nil)
}

// mysqlColumnInfo is what the driver tells about one result column.
type mysqlColumnInfo struct {
	dbType           string // the driver's DatabaseTypeName: "VARCHAR", "UNSIGNED INT", …
	length           uint32 // display length in bytes of the result character set; 0 when unknown
	unsigned         bool
	nullable         bool
	precision, scale int64
	hasPrecision     bool
}

// Flags of the column definition packet (MySQL's include/mysql_com.h).
const (
	mysqlFlagUnsigned  = 32
	mysqlBinaryCharset = 63
)

// mysqlColumnInfos collects column facts. The driver's public API (database/sql/driver
// extensions) has no column length, which is what tells VARCHAR(20) and TINYINT(1) (MySQL's
// BOOLEAN) apart, nor the unsigned flag of DECIMAL; it keeps them in unexported fields that
// reflection can read (never write). If a driver upgrade renames them, lengths read as
// unknown: types then show without a length and TINYINT(1) as a number, which the tests
// catch.
func mysqlColumnInfos(rows driver.Rows) []mysqlColumnInfo {
	n := len(rows.Columns())
	out := make([]mysqlColumnInfo, n)
	lengths, flags, charsets := mysqlRawFields(rows, n)
	for i := range out {
		c := &out[i]
		c.nullable = true
		if r, ok := rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
			c.dbType = r.ColumnTypeDatabaseTypeName(i)
		}
		if r, ok := rows.(driver.RowsColumnTypeNullable); ok {
			if nullable, ok := r.ColumnTypeNullable(i); ok {
				c.nullable = nullable
			}
		}
		if r, ok := rows.(driver.RowsColumnTypePrecisionScale); ok {
			c.precision, c.scale, c.hasPrecision = r.ColumnTypePrecisionScale(i)
		}
		if lengths != nil {
			c.length = lengths[i]
			c.unsigned = flags[i]&mysqlFlagUnsigned != 0
			// Character columns count bytes of the result character set: utf8mb4 (the
			// driver's) has up to 4 per character.
			if charsets[i] != mysqlBinaryCharset {
				c.length /= 4
			}
		}
	}
	return out
}

func mysqlRawFields(rows driver.Rows, n int) (lengths []uint32, flags []uint64, charsets []uint64) {
	v := reflect.ValueOf(rows)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, nil, nil
	}
	rs := v.Elem().FieldByName("rs")
	if !rs.IsValid() || rs.Kind() != reflect.Struct {
		return nil, nil, nil
	}
	cols := rs.FieldByName("columns")
	if !cols.IsValid() || cols.Kind() != reflect.Slice || cols.Len() != n {
		return nil, nil, nil
	}
	lengths, flags, charsets = make([]uint32, n), make([]uint64, n), make([]uint64, n)
	for i := range n {
		c := cols.Index(i)
		if c.Kind() != reflect.Struct {
			return nil, nil, nil
		}
		l, f, cs := c.FieldByName("length"), c.FieldByName("flags"), c.FieldByName("charSet")
		if !isUintValue(l) || !isUintValue(f) || !isUintValue(cs) {
			return nil, nil, nil
		}
		lengths[i], flags[i], charsets[i] = uint32(l.Uint()), f.Uint(), cs.Uint()
	}
	return lengths, flags, charsets
}

func isUintValue(v reflect.Value) bool {
	if !v.IsValid() {
		return false
	}
	switch v.Kind() {
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// field maps the column to a Delta field; the Delta type decides the appender.
func (c mysqlColumnInfo) field(name string) txlog.StructField {
	withLen := func(t string) string {
		if c.length > 0 {
			return fmt.Sprintf("%s(%d)", t, c.length)
		}
		return t
	}
	fractional := func(t string) string {
		if c.hasPrecision && c.scale > 0 && c.scale <= 6 {
			return fmt.Sprintf("%s(%d)", t, c.scale)
		}
		return t
	}
	f := func(delta, mysqlType string) txlog.StructField {
		return dbField(name, delta, mysqlType, c.nullable, false)
	}
	switch c.dbType {
	case "TINYINT":
		if c.length == 1 {
			return f("boolean", "tinyint(1)")
		}
		return f("byte", "tinyint")
	case "UNSIGNED TINYINT":
		return f("short", "tinyint unsigned")
	case "SMALLINT":
		return f("short", "smallint")
	case "UNSIGNED SMALLINT":
		return f("integer", "smallint unsigned")
	case "MEDIUMINT":
		return f("integer", "mediumint")
	case "UNSIGNED MEDIUMINT":
		return f("integer", "mediumint unsigned")
	case "INT":
		return f("integer", "int")
	case "UNSIGNED INT":
		return f("long", "int unsigned")
	case "BIGINT":
		return f("long", "bigint")
	case "UNSIGNED BIGINT":
		return f("decimal(20,0)", "bigint unsigned")
	case "YEAR":
		return f("short", "year")
	case "FLOAT":
		return f("float", "float")
	case "DOUBLE":
		return f("double", "double")
	case "DECIMAL":
		p, s := int(c.precision), int(c.scale)
		if c.unsigned { // the driver counts a sign character unsigned columns do not have
			p++
		}
		t, _ := decimalTypeName(p, s)
		return f(t, fmt.Sprintf("decimal(%d,%d)", p, s))
	case "DATE":
		// Always nullable: zero dates ('0000-00-00') become NULL even in NOT NULL columns.
		return dbField(name, "date", "date", true, false)
	case "DATETIME":
		return dbField(name, "timestamp", fractional("datetime"), true, false)
	case "TIMESTAMP":
		return dbField(name, "timestamp", fractional("timestamp"), true, false)
	case "TIME":
		return f("string", fractional("time"))
	case "CHAR":
		return f("string", withLen("char"))
	case "VARCHAR":
		if c.length == 0 {
			return f("string", "longtext")
		}
		return f("string", withLen("varchar"))
	case "ENUM", "SET":
		// The protocol does not carry the member list, so the type shown is a VARCHAR.
		if c.length == 0 {
			return f("string", "longtext")
		}
		return f("string", withLen("varchar"))
	case "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT":
		return f("string", lobTypeName("text", c.length))
	case "JSON":
		return dbField(name, "string", "json", c.nullable, true)
	case "BINARY":
		return f("binary", withLen("binary"))
	case "VARBINARY":
		if c.length == 0 {
			return f("binary", "longblob")
		}
		return f("binary", withLen("varbinary"))
	case "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB":
		return f("binary", lobTypeName("blob", c.length))
	case "BIT":
		// BIT(n) arrives as ceil(n/8) big-endian bytes; shown as the VARBINARY that holds them.
		if c.length == 0 {
			return f("binary", "varbinary(8)")
		}
		return f("binary", fmt.Sprintf("varbinary(%d)", (c.length+7)/8))
	case "GEOMETRY", "VECTOR":
		return f("binary", "longblob") // WKB with a leading SRID; float32s
	}
	// NULL-typed expressions (SELECT NULL) and anything newer than this code: text.
	return dbField(name, "string", "longtext", true, false)
}

// lobTypeName picks TINYTEXT…LONGTEXT (or the BLOB names) from a column's maximum length,
// since the server sends all four with one type code.
func lobTypeName(base string, length uint32) string {
	switch {
	case length == 0:
		return "long" + base
	case length <= 255:
		return "tiny" + base
	case length <= 65535:
		return base
	case length <= 16777215:
		return "medium" + base
	}
	return "long" + base
}

// mysqlAppenderFor parses the driver's values for one column into its builder. The text
// protocol gives integers as int64 (uint64 for BIGINT UNSIGNED), floats as float32 or
// float64, and everything else as bytes.
func mysqlAppenderFor(b array.Builder, f txlog.StructField) mysqlAppender {
	wrong := func(v driver.Value) (int, error) {
		return 0, fmt.Errorf("unexpected %T value for a %s column", v, f.Metadata[MetaMySQLType])
	}
	switch b := b.(type) {
	case *array.BooleanBuilder:
		return func(v driver.Value) (int, error) {
			x, ok := v.(int64)
			if !ok {
				return wrong(v)
			}
			if x != 0 && x != 1 {
				// TINYINT(1) is BOOLEAN to MySQL clients and to Delta, but holds -128…127.
				return 0, fmt.Errorf("%d in a TINYINT(1) column, read as BOOLEAN (0 or 1); select CAST(%s AS SIGNED) to keep the number", x, f.Name)
			}
			b.Append(x != 0)
			return 1, nil
		}
	case *array.Int8Builder:
		return func(v driver.Value) (int, error) {
			x, ok := v.(int64)
			if !ok {
				return wrong(v)
			}
			b.Append(int8(x))
			return 1, nil
		}
	case *array.Int16Builder:
		return func(v driver.Value) (int, error) {
			x, ok := v.(int64)
			if !ok {
				return wrong(v)
			}
			b.Append(int16(x))
			return 2, nil
		}
	case *array.Int32Builder:
		return func(v driver.Value) (int, error) {
			x, ok := v.(int64)
			if !ok {
				return wrong(v)
			}
			b.Append(int32(x))
			return 4, nil
		}
	case *array.Int64Builder:
		return func(v driver.Value) (int, error) {
			x, ok := v.(int64)
			if !ok {
				return wrong(v)
			}
			b.Append(x)
			return 8, nil
		}
	case *array.Float32Builder:
		return func(v driver.Value) (int, error) {
			x, ok := v.(float32)
			if !ok {
				return wrong(v)
			}
			b.Append(x)
			return 4, nil
		}
	case *array.Float64Builder:
		return func(v driver.Value) (int, error) {
			x, ok := v.(float64)
			if !ok {
				return wrong(v)
			}
			b.Append(x)
			return 8, nil
		}
	case *array.Decimal128Builder:
		dt := b.Type().(*arrow.Decimal128Type)
		return func(v driver.Value) (int, error) {
			switch x := v.(type) {
			case uint64:
				b.Append(decimal128.FromU64(x))
				return 8, nil
			case []byte:
				n, err := parseDecimalText(x, dt.Precision, dt.Scale)
				if err != nil {
					return 0, err
				}
				b.Append(n)
				return len(x), nil
			}
			return wrong(v)
		}
	case *array.Date32Builder:
		return func(v driver.Value) (int, error) {
			x, ok := v.([]byte)
			if !ok {
				return wrong(v)
			}
			days, ok, err := parseDateText(x)
			if err != nil {
				return 0, err
			}
			if ok {
				b.Append(arrow.Date32(days))
			} else {
				b.AppendNull()
			}
			return len(x), nil
		}
	case *array.TimestampBuilder:
		return func(v driver.Value) (int, error) {
			x, ok := v.([]byte)
			if !ok {
				return wrong(v)
			}
			us, ok, err := parseDateTimeText(x)
			if err != nil {
				return 0, err
			}
			if ok {
				b.Append(arrow.Timestamp(us))
			} else {
				b.AppendNull()
			}
			return len(x), nil
		}
	case *array.StringBuilder:
		return func(v driver.Value) (int, error) {
			x, ok := v.([]byte)
			if !ok {
				return wrong(v)
			}
			b.BinaryBuilder.Append(x)
			return len(x), nil
		}
	case *array.BinaryBuilder:
		return func(v driver.Value) (int, error) {
			x, ok := v.([]byte)
			if !ok {
				return wrong(v)
			}
			b.Append(x)
			return len(x), nil
		}
	}
	return func(v driver.Value) (int, error) {
		return 0, fmt.Errorf("no reader for %s columns", strings.ToLower(f.Type.Name))
	}
}
