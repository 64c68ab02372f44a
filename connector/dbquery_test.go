package connector

// Tests of QueryMySQL and QueryPostgres against real servers: MariaDB at 127.0.0.1:3306
// (root, no password) and PostgreSQL at 127.0.0.1:5432 (trust). They fail, not skip, when
// a server is unreachable: CI starts both. Each test works in its own database or schema.

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	testMySQLAddr    = "127.0.0.1:3306"
	testPostgresAddr = "127.0.0.1:5432"
)

var dbTestSeq atomic.Int64

// dbTestName is a database or schema name no other test run uses.
func dbTestName(t *testing.T) string {
	return fmt.Sprintf("lh_dbq_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, dbTestSeq.Add(1))
}

// mysqlTestDB creates a database for the test (dropped after it) and returns a URL for it
// and a handle for setting it up.
func mysqlTestDB(t *testing.T) (string, *sql.DB) {
	t.Helper()
	name := dbTestName(t)
	admin, err := sql.Open("mysql", "root@tcp("+testMySQLAddr+")/?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("MariaDB at %s (CI starts it): %v", testMySQLAddr, err)
	}
	admin.Close()
	db, err := sql.Open("mysql", "root@tcp("+testMySQLAddr+")/"+name+"?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // session settings (time_zone, sql_mode) must hold for every statement
	t.Cleanup(func() {
		db.Exec("DROP DATABASE " + name)
		db.Close()
	})
	return "mysql://root@" + testMySQLAddr + "/" + name, db
}

// postgresTestSchema creates a schema in database test (dropped after the test) and returns
// a URL whose search_path is that schema, and a function running SQL there.
func postgresTestSchema(t *testing.T) (string, func(string)) {
	t.Helper()
	name := dbTestName(t)
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, "postgres://postgres@"+testPostgresAddr+"/test?sslmode=disable")
	if err != nil {
		t.Fatalf("PostgreSQL at %s (CI starts it): %v", testPostgresAddr, err)
	}
	exec := func(q string) {
		t.Helper()
		if _, err := conn.Exec(ctx, q).ReadAll(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE SCHEMA " + name + "; SET search_path = " + name)
	t.Cleanup(func() {
		conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE").ReadAll()
		conn.Close(ctx)
	})
	return "postgres://postgres@" + testPostgresAddr + "/test?sslmode=disable&search_path=" + name, exec
}

// readAllRows drains src and renders every value as text (see cellText).
func readAllRows(t *testing.T, src Source) [][]string {
	t.Helper()
	var rows [][]string
	for {
		rec, err := src.Next(context.Background())
		if err == io.EOF {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Schema().Equal(src.Schema()) {
			t.Fatalf("batch schema %v, source schema %v", rec.Schema(), src.Schema())
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, rec.NumCols())
			for j := range row {
				row[j] = cellText(rec.Column(j), i)
			}
			rows = append(rows, row)
		}
		rec.Release()
	}
}

// cellText renders a value so that expectations read like SQL output: decimals at their
// scale, dates and times in UTC, binary in hex, NULL as NULL.
func cellText(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "NULL"
	}
	switch a := a.(type) {
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Int8:
		return strconv.Itoa(int(a.Value(i)))
	case *array.Int16:
		return strconv.Itoa(int(a.Value(i)))
	case *array.Int32:
		return strconv.Itoa(int(a.Value(i)))
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Float32:
		return strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Date32:
		return a.Value(i).ToTime().Format(time.DateOnly)
	case *array.Timestamp:
		return a.Value(i).ToTime(arrow.Microsecond).UTC().Format("2006-01-02 15:04:05.999999")
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return hex.EncodeToString(a.Value(i))
	}
	return "?" + a.DataType().String()
}

// dbTypeCase is one column of a round-trip test: its declaration, a value to insert (SQL
// literal), and what the source should report.
type dbTypeCase struct {
	decl, literal    string
	delta, mysqlType string
	json             bool
	want             string
}

// checkRoundTrip creates table t from cases (plus a NOT NULL id), inserts a row of values
// and a row of NULLs, reads the table back with query and checks types and values.
func checkRoundTrip(t *testing.T, src Source, cases []dbTypeCase, idNullable bool) {
	t.Helper()
	fields := src.Fields()
	if len(fields) != len(cases)+1 {
		t.Fatalf("got %d fields, want %d", len(fields), len(cases)+1)
	}
	if fields[0].Name != "id" || fields[0].Type.Name != "integer" || fields[0].Nullable != idNullable {
		t.Errorf("id field = %+v, want a NOT NULL integer (nullable %v)", fields[0], idNullable)
	}
	rows := readAllRows(t, src)
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2: %v", len(rows), rows)
	}
	for i, c := range cases {
		f := fields[i+1]
		if f.Name != fmt.Sprintf("c%d", i) || f.Type.Name != c.delta || f.Metadata[MetaMySQLType] != c.mysqlType || !f.Nullable {
			t.Errorf("%s: field %s %s nullable=%v (%v), want %s %s nullable", c.decl, f.Name, f.Type.Name, f.Nullable, f.Metadata[MetaMySQLType], c.delta, c.mysqlType)
		}
		if got := f.Metadata[MetaJSON] == true; got != c.json {
			t.Errorf("%s: JSON mark %v, want %v", c.decl, got, c.json)
		}
		if got := rows[0][i+1]; got != c.want {
			t.Errorf("%s: value %q, want %q", c.decl, got, c.want)
		}
		if got := rows[1][i+1]; got != "NULL" {
			t.Errorf("%s: NULL came back as %q", c.decl, got)
		}
	}
	if p := src.Progress(); p.Rows != 2 || p.Bytes <= 0 {
		t.Errorf("progress %+v, want 2 rows and some bytes", p)
	}
}

func createRoundTripTable(cases []dbTypeCase) (create, insert, insertNull string) {
	var decls, lits, nulls []string
	for i, c := range cases {
		decls = append(decls, fmt.Sprintf("c%d %s", i, c.decl))
		lits = append(lits, c.literal)
		nulls = append(nulls, "NULL")
	}
	return "CREATE TABLE t (id int NOT NULL, " + strings.Join(decls, ", ") + ")",
		"INSERT INTO t VALUES (1, " + strings.Join(lits, ", ") + ")",
		"INSERT INTO t VALUES (2, " + strings.Join(nulls, ", ") + ")"
}

func TestQueryMySQLTypes(t *testing.T) {
	t.Parallel()
	url, db := mysqlTestDB(t)
	cases := []dbTypeCase{
		{"tinyint", "-128", "byte", "tinyint", false, "-128"},
		{"tinyint unsigned", "255", "short", "tinyint unsigned", false, "255"},
		{"boolean", "true", "boolean", "tinyint(1)", false, "true"},
		{"smallint", "-32768", "short", "smallint", false, "-32768"},
		{"smallint unsigned", "65535", "integer", "smallint unsigned", false, "65535"},
		{"mediumint", "-8388608", "integer", "mediumint", false, "-8388608"},
		{"mediumint unsigned", "16777215", "integer", "mediumint unsigned", false, "16777215"},
		{"int", "-2147483648", "integer", "int", false, "-2147483648"},
		{"int unsigned", "4294967295", "long", "int unsigned", false, "4294967295"},
		{"bigint", "-9223372036854775808", "long", "bigint", false, "-9223372036854775808"},
		{"bigint unsigned", "18446744073709551615", "decimal(20,0)", "bigint unsigned", false, "18446744073709551615"},
		{"float", "1.5", "float", "float", false, "1.5"},
		{"double", "-2.25e300", "double", "double", false, "-2.25e+300"},
		{"decimal(10,2)", "-12345678.9", "decimal(10,2)", "decimal(10,2)", false, "-12345678.90"},
		{"decimal(10,2) unsigned", "12345678.9", "decimal(10,2)", "decimal(10,2)", false, "12345678.90"},
		{"decimal(38,10)", "'-1234567890123456789012345678.0123456789'", "decimal(38,10)", "decimal(38,10)", false, "-1234567890123456789012345678.0123456789"},
		{"decimal(5,5)", "0.00042", "decimal(5,5)", "decimal(5,5)", false, "0.00042"},
		{"decimal(65,30)", "'12345678901234567890123456789012345.5'", "string", "decimal(65,30)", false, "12345678901234567890123456789012345.500000000000000000000000000000"},
		{"date", "'2024-02-29'", "date", "date", false, "2024-02-29"},
		{"date", "'0001-01-01'", "date", "date", false, "0001-01-01"},
		{"datetime", "'2024-02-29 13:14:15'", "timestamp", "datetime", false, "2024-02-29 13:14:15"},
		{"datetime(6)", "'1969-12-31 23:59:59.123456'", "timestamp", "datetime(6)", false, "1969-12-31 23:59:59.123456"},
		// Inserted at +02:00 (see the session below); read as the UTC instant.
		{"timestamp(3)", "'2024-02-29 15:14:15.125'", "timestamp", "timestamp(3)", false, "2024-02-29 13:14:15.125"},
		{"time", "'-838:59:59'", "string", "time", false, "-838:59:59"},
		{"time(6)", "'12:34:56.5'", "string", "time(6)", false, "12:34:56.500000"},
		{"year", "2155", "short", "year", false, "2155"},
		{"char(5)", "'ab'", "string", "char(5)", false, "ab"},
		{"varchar(20)", "'héllo 😀 世界'", "string", "varchar(20)", false, "héllo 😀 世界"},
		{"varchar(10) character set latin1", "'café'", "string", "varchar(10)", false, "café"},
		{"tinytext", "'t'", "string", "tinytext", false, "t"},
		{"text", "'文字'", "string", "text", false, "文字"},
		{"mediumtext", "'m'", "string", "mediumtext", false, "m"},
		{"longtext", "'l'", "string", "longtext", false, "l"},
		// MariaDB's JSON is LONGTEXT with a check; the protocol does not say JSON (MySQL's does).
		{"json", `'{"a": [1, "😀"]}'`, "string", "longtext", false, `{"a": [1, "😀"]}`},
		{"enum('a','bb')", "'bb'", "string", "varchar(2)", false, "bb"},
		{"set('x','y')", "'x,y'", "string", "varchar(3)", false, "x,y"},
		{"binary(3)", "'ab'", "binary", "binary(3)", false, "616200"},
		{"varbinary(8)", "x'00ff'", "binary", "varbinary(8)", false, "00ff"},
		{"tinyblob", "x'01'", "binary", "tinyblob", false, "01"},
		{"blob", "x'02'", "binary", "blob", false, "02"},
		{"mediumblob", "x'03'", "binary", "mediumblob", false, "03"},
		{"longblob", "x'04'", "binary", "longblob", false, "04"},
		{"bit(10)", "b'1000000001'", "binary", "varbinary(2)", false, "0201"},
		{"geometry", "ST_GeomFromText('POINT(1 2)')", "binary", "longblob", false, "000000000101000000000000000000f03f0000000000000040"},
	}
	create, insert, insertNull := createRoundTripTable(cases)
	for _, q := range []string{"SET time_zone = '+02:00'", create, insert, insertNull} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	src, err := QueryMySQL(context.Background(), url, "SELECT * FROM t ORDER BY id", DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	checkRoundTrip(t, src, cases, false)
}

func TestQueryPostgresTypes(t *testing.T) {
	t.Parallel()
	url, exec := postgresTestSchema(t)
	exec("CREATE TYPE mood AS ENUM ('sad', 'happy')")
	cases := []dbTypeCase{
		{"boolean", "true", "boolean", "tinyint(1)", false, "true"},
		{"smallint", "-32768", "short", "smallint", false, "-32768"},
		{"integer", "-2147483648", "integer", "int", false, "-2147483648"},
		{"bigint", "-9223372036854775808", "long", "bigint", false, "-9223372036854775808"},
		{"oid", "4294967295", "long", "int unsigned", false, "4294967295"},
		{"real", "1.5", "float", "float", false, "1.5"},
		{"double precision", "-2.25e300", "double", "double", false, "-2.25e+300"},
		{"numeric(10,2)", "-12345678.9", "decimal(10,2)", "decimal(10,2)", false, "-12345678.90"},
		{"numeric(38,10)", "-1234567890123456789012345678.0123456789", "decimal(38,10)", "decimal(38,10)", false, "-1234567890123456789012345678.0123456789"},
		{"numeric(50,5)", "123456789012345678901234567890123456789012345.5", "string", "decimal(50,5)", false, "123456789012345678901234567890123456789012345.50000"},
		{"numeric", "3.25", "double", "double", false, "3.25"},
		{"numeric", "'NaN'", "double", "double", false, "NaN"},
		{"date", "'2024-02-29'", "date", "date", false, "2024-02-29"},
		{"date", "'4713-01-01 BC'", "date", "date", false, "-4712-01-01"},
		{"date", "'infinity'", "date", "date", false, "NULL"},
		{"timestamp", "'1969-12-31 23:59:59.123456'", "timestamp", "datetime(6)", false, "1969-12-31 23:59:59.123456"},
		{"timestamp(3)", "'2024-02-29 13:14:15.125'", "timestamp", "datetime(3)", false, "2024-02-29 13:14:15.125"},
		{"timestamptz", "'2024-02-29 15:14:15.125+02'", "timestamp", "datetime(6)", false, "2024-02-29 13:14:15.125"},
		{"time", "'13:14:15.5'", "string", "time(6)", false, "13:14:15.5"},
		{"time(0)", "'13:14:15'", "string", "time(0)", false, "13:14:15"},
		{"timetz", "'13:14:15+02'", "string", "longtext", false, "13:14:15+02"},
		{"interval", "'1 day 02:03:04'", "string", "longtext", false, "1 day 02:03:04"},
		{"text", "'héllo 😀 世界'", "string", "longtext", false, "héllo 😀 世界"},
		{"varchar(20)", "'文字'", "string", "varchar(20)", false, "文字"},
		{"varchar", "'v'", "string", "longtext", false, "v"},
		{"char(5)", "'ab'", "string", "char(5)", false, "ab"},
		{"name", "'n'", "string", "varchar(63)", false, "n"},
		{`"char"`, "'q'", "string", "char(1)", false, "q"},
		{"uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "string", "char(36)", false, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"inet", "'192.168.0.1/24'", "string", "varchar(43)", false, "192.168.0.1/24"},
		{"mood", "'happy'", "string", "longtext", false, "happy"},
		{"money", "12.5", "string", "longtext", false, "$12.50"},
		{"json", `'{"b": 1, "a": [1, "😀"]}'`, "string", "json", true, `{"b": 1, "a": [1, "😀"]}`},
		{"jsonb", `'{"b": 1, "a": [1, "😀"]}'`, "string", "json", true, `{"a": [1, "😀"], "b": 1}`},
		{"integer[]", "'{1,NULL,3}'", "string", "json", true, "[1,null,3]"},
		{"text[][]", `'{{"a b","c\"d"},{NULL,"NULL"}}'`, "string", "json", true, `[["a b","c\"d"],[null,"NULL"]]`},
		{"boolean[]", "'{t,f}'", "string", "json", true, "[true,false]"},
		{"numeric[]", "'{1.5,NaN}'", "string", "json", true, `[1.5,"NaN"]`},
		{"jsonb[]", `ARRAY['{"a":1}'::jsonb, '[2]']`, "string", "json", true, `[{"a": 1},[2]]`},
		{"date[]", "'[0:1]={2024-01-01,2024-01-02}'", "string", "json", true, `["2024-01-01","2024-01-02"]`},
		{"text[]", "'{}'", "string", "json", true, "[]"},
		{"bytea", `'\x00ff'`, "binary", "longblob", false, "00ff"},
		{"bit(10)", "B'1000000001'", "binary", "varbinary(2)", false, "8040"},
		{"varbit", "B'101'", "binary", "longblob", false, "a0"},
	}
	create, insert, insertNull := createRoundTripTable(cases)
	exec(create)
	exec("SET timezone = 'Europe/Paris'; " + insert + "; " + insertNull)
	src, err := QueryPostgres(context.Background(), url, "SELECT * FROM t ORDER BY id", DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	checkRoundTrip(t, src, cases, true)
}

func TestQueryMySQLZeroDates(t *testing.T) {
	t.Parallel()
	url, db := mysqlTestDB(t)
	for _, q := range []string{
		"SET sql_mode = ''",
		"CREATE TABLE z (d date NOT NULL, dt datetime NOT NULL, ts timestamp NULL)",
		"INSERT INTO z VALUES ('0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00'), ('2024-00-10', '2024-01-01 00:00:00', NULL)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	src, err := QueryMySQL(context.Background(), url, "SELECT * FROM z", DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, f := range src.Fields() {
		if !f.Nullable {
			t.Errorf("%s is not nullable; zero dates read as NULL", f.Name)
		}
	}
	got := fmt.Sprint(readAllRows(t, src))
	if want := "[[NULL NULL NULL] [NULL 2024-01-01 00:00:00 NULL]]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestQueryEmptyResult: a result with no rows still has its columns and types.
func TestQueryEmptyResult(t *testing.T) {
	t.Parallel()
	myURL, db := mysqlTestDB(t)
	if _, err := db.Exec("CREATE TABLE e (a varchar(7) NOT NULL, b decimal(9,3), c datetime(6))"); err != nil {
		t.Fatal(err)
	}
	pgURL, exec := postgresTestSchema(t)
	exec("CREATE TABLE e (a varchar(7) NOT NULL, b numeric(9,3), c timestamp)")
	open := map[string]func() (Source, error){
		"mysql": func() (Source, error) {
			return QueryMySQL(context.Background(), myURL, "SELECT * FROM e", DBOptions{})
		},
		"postgres": func() (Source, error) {
			return QueryPostgres(context.Background(), pgURL, "SELECT * FROM e", DBOptions{})
		},
	}
	for name, open := range open {
		t.Run(name, func(t *testing.T) {
			src, err := open()
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var got []string
			for _, f := range src.Fields() {
				got = append(got, f.Name+" "+f.Type.Name+" "+f.Metadata[MetaMySQLType].(string))
			}
			if want := "a string varchar(7), b decimal(9,3) decimal(9,3), c timestamp datetime(6)"; strings.Join(got, ", ") != want {
				t.Errorf("fields %s, want %s", strings.Join(got, ", "), want)
			}
			if src.Schema().NumFields() != 3 {
				t.Errorf("schema %v", src.Schema())
			}
			if _, err := src.Next(context.Background()); err != io.EOF {
				t.Errorf("Next = %v, want io.EOF", err)
			}
			if _, err := src.Next(context.Background()); err != io.EOF {
				t.Errorf("second Next = %v, want io.EOF", err)
			}
		})
	}
}

func TestQueryDuplicateColumnNames(t *testing.T) {
	t.Parallel()
	srcs := map[string]func() (Source, error){
		"mysql": func() (Source, error) {
			return QueryMySQL(context.Background(), "mysql://root@"+testMySQLAddr+"/test", "SELECT 1 AS id, 2 AS ID, 3 AS id", DBOptions{})
		},
		"postgres": func() (Source, error) {
			return QueryPostgres(context.Background(), "postgres://postgres@"+testPostgresAddr+"/test?sslmode=disable", "SELECT 1 AS id, 2 AS \"ID\", 3 AS id", DBOptions{})
		},
	}
	for name, open := range srcs {
		t.Run(name, func(t *testing.T) {
			src, err := open()
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var names []string
			for _, f := range src.Fields() {
				names = append(names, f.Name)
			}
			if got := strings.Join(names, ","); got != "id,ID_2,id_3" {
				t.Errorf("names %s, want id,ID_2,id_3", got)
			}
			if got := fmt.Sprint(readAllRows(t, src)); got != "[[1 2 3]]" {
				t.Errorf("rows %s", got)
			}
		})
	}
}

func TestQueryDBErrors(t *testing.T) {
	t.Parallel()
	fakePG := startFakePostgres(t)
	silent := startSilentServer(t)
	tests := []struct {
		name     string
		open     func(ctx context.Context) (Source, error)
		want     []string // substrings of the error
		within   time.Duration
		secretOK bool
	}{
		{"mysql wrong password", func(ctx context.Context) (Source, error) {
			return QueryMySQL(ctx, "mysql://root:s3cret-pw@"+testMySQLAddr+"/test", "SELECT 1", DBOptions{})
		}, []string{`user "root"`, testMySQLAddr, "Access denied", "password"}, 5 * time.Second, false},
		{"mysql unknown database", func(ctx context.Context) (Source, error) {
			return QueryMySQL(ctx, "mysql://root@"+testMySQLAddr+"/no_such_db_lh", "SELECT 1", DBOptions{})
		}, []string{"no_such_db_lh", "check the database"}, 5 * time.Second, true},
		{"mysql closed port", func(ctx context.Context) (Source, error) {
			return QueryMySQL(ctx, "mysql://root:s3cret-pw@127.0.0.1:1/test", "SELECT 1", DBOptions{})
		}, []string{"127.0.0.1:1", "connection refused"}, 5 * time.Second, false},
		{"mysql unroutable", func(ctx context.Context) (Source, error) {
			return QueryMySQL(ctx, "mysql://root:s3cret-pw@10.255.255.1/test", "SELECT 1", DBOptions{ConnectTimeout: time.Second})
		}, []string{"10.255.255.1:3306", "cannot connect"}, 2500 * time.Millisecond, false},
		{"mysql silent server", func(ctx context.Context) (Source, error) {
			return QueryMySQL(ctx, "mysql://root:s3cret-pw@"+silent+"/test", "SELECT 1", DBOptions{ConnectTimeout: time.Second})
		}, []string{silent, "within 1s"}, 2500 * time.Millisecond, false},
		{"mysql bad SQL", func(ctx context.Context) (Source, error) {
			return QueryMySQL(ctx, "mysql://root@"+testMySQLAddr+"/test", "SELEC 1", DBOptions{})
		}, []string{testMySQLAddr, "You have an error in your SQL syntax", "SELEC 1"}, 5 * time.Second, true},
		{"mysql statement without rows", func(ctx context.Context) (Source, error) {
			return QueryMySQL(ctx, "mysql://root@"+testMySQLAddr+"/test", "DO 1", DBOptions{})
		}, []string{"returns no rows"}, 5 * time.Second, true},
		{"mysql malformed URL", func(ctx context.Context) (Source, error) {
			return QueryMySQL(ctx, "mysql://root:s3cret-pw@host:99999/db", "SELECT 1", DBOptions{})
		}, []string{"mysql://root:***@host:99999/db", "invalid port", "expected mysql://user:password@host:port/database"}, time.Second, false},
		{"mysql file-reading parameter", func(ctx context.Context) (Source, error) {
			return QueryMySQL(ctx, "mysql://root@"+testMySQLAddr+"/test?allowAllFiles=true", "SELECT 1", DBOptions{})
		}, []string{`parameter "allowAllFiles" is not supported`}, time.Second, true},
		{"mysql wrong scheme", func(ctx context.Context) (Source, error) {
			return QueryMySQL(ctx, "postgres://root@"+testMySQLAddr+"/test", "SELECT 1", DBOptions{})
		}, []string{"scheme must be mysql"}, time.Second, true},
		{"postgres wrong password", func(ctx context.Context) (Source, error) {
			return QueryPostgres(ctx, "postgres://alice:s3cret-pw@"+fakePG+"/test?sslmode=disable", "SELECT 1", DBOptions{})
		}, []string{`user "alice"`, fakePG, "password authentication failed", "check the user name and password"}, 5 * time.Second, false},
		{"postgres unknown role", func(ctx context.Context) (Source, error) {
			return QueryPostgres(ctx, "postgres://no_such_role_lh:s3cret-pw@"+testPostgresAddr+"/test?sslmode=disable", "SELECT 1", DBOptions{})
		}, []string{`user "no_such_role_lh"`, testPostgresAddr, "does not exist"}, 5 * time.Second, false},
		{"postgres unknown database", func(ctx context.Context) (Source, error) {
			return QueryPostgres(ctx, "postgresql://postgres@"+testPostgresAddr+"/no_such_db_lh?sslmode=disable", "SELECT 1", DBOptions{})
		}, []string{"no_such_db_lh", "check the database"}, 5 * time.Second, true},
		{"postgres closed port", func(ctx context.Context) (Source, error) {
			return QueryPostgres(ctx, "postgres://postgres:s3cret-pw@127.0.0.1:1/test", "SELECT 1", DBOptions{})
		}, []string{"127.0.0.1:1", "connection refused"}, 5 * time.Second, false},
		{"postgres unroutable", func(ctx context.Context) (Source, error) {
			return QueryPostgres(ctx, "postgres://postgres:s3cret-pw@10.255.255.1/test", "SELECT 1", DBOptions{ConnectTimeout: time.Second})
		}, []string{"10.255.255.1:5432", "cannot connect"}, 2500 * time.Millisecond, false},
		{"postgres silent server", func(ctx context.Context) (Source, error) {
			return QueryPostgres(ctx, "postgres://postgres:s3cret-pw@"+silent+"/test", "SELECT 1", DBOptions{ConnectTimeout: time.Second})
		}, []string{silent, "within 1s"}, 2500 * time.Millisecond, false},
		{"postgres bad SQL", func(ctx context.Context) (Source, error) {
			return QueryPostgres(ctx, "postgres://postgres@"+testPostgresAddr+"/test?sslmode=disable", "SELEC 1", DBOptions{})
		}, []string{testPostgresAddr, `syntax error at or near "SELEC"`, "42601"}, 5 * time.Second, true},
		{"postgres parameters", func(ctx context.Context) (Source, error) {
			return QueryPostgres(ctx, "postgres://postgres@"+testPostgresAddr+"/test?sslmode=disable", "SELECT $1::int", DBOptions{})
		}, []string{"1 parameters"}, 5 * time.Second, true},
		{"postgres statement without rows", func(ctx context.Context) (Source, error) {
			return QueryPostgres(ctx, "postgres://postgres@"+testPostgresAddr+"/test?sslmode=disable", "CREATE TEMP TABLE x (a int)", DBOptions{})
		}, []string{"returns no rows"}, 5 * time.Second, true},
		{"postgres malformed URL", func(ctx context.Context) (Source, error) {
			return QueryPostgres(ctx, "postgres://u:s3cret-pw@/db", "SELECT 1", DBOptions{})
		}, []string{"postgres://u:***@/db", "no host", "expected postgres://user:password@host:port/database"}, time.Second, false},
		{"postgres file-reading parameter", func(ctx context.Context) (Source, error) {
			return QueryPostgres(ctx, "postgres://postgres@"+testPostgresAddr+"/test?sslkey=/etc/shadow", "SELECT 1", DBOptions{})
		}, []string{`parameter "sslkey" is not supported`, "sslmode"}, time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			src, err := tt.open(context.Background())
			took := time.Since(start)
			if err == nil {
				src.Close()
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("error shows the password: %v", err)
			}
			if took > tt.within {
				t.Errorf("took %v, want under %v", took, tt.within)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"mysql://root:pw@host:3306/db", "mysql://root:***@host:3306/db"},
		{"mysql://root@host/db", "mysql://root@host/db"},
		{"postgres://u:p%40ss@h/db?sslmode=disable", "postgres://u:***@h/db?sslmode=disable"},
		{"postgres://u:p@ss/w@h:5432/db", "postgres://u:***@h:5432/db"},
		{"postgres://h/db?user=u&password=pw&sslmode=require", "postgres://h/db?user=u&password=***&sslmode=require"},
		{"mysql://u:pw@host:99999999/db?x=1", "mysql://u:***@host:99999999/db?x=1"},
		{"not a url", "not a url"},
	} {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseDecimalText(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in         string
		prec, scal int32
		want       string // "" for an error
	}{
		{"123.45", 5, 2, "123.45"},
		{"-0.5", 3, 2, "-0.50"},
		{"7", 3, 2, "7.00"},
		{"+1.2", 2, 1, "1.2"},
		{"99999999999999999999999999999999999999", 38, 0, "99999999999999999999999999999999999999"},
		{"-1234567890123456789.0123456789012345678", 38, 19, "-1234567890123456789.0123456789012345678"},
		{"0.000", 4, 3, "0.000"},
		{"1234.5", 5, 2, ""}, // too many digits
		{"1.234", 5, 2, ""},  // more fraction digits than the scale
		{"1e5", 5, 0, ""},    // no exponents
		{"", 5, 0, ""},       //
		{"NaN", 5, 0, ""},    //
		{"1.2.3", 5, 2, ""},  //
		{"--1", 5, 0, ""},    //
	} {
		n, err := parseDecimalText([]byte(tt.in), tt.prec, tt.scal)
		got := ""
		if err == nil {
			got = n.ToString(tt.scal)
		}
		if got != tt.want {
			t.Errorf("parseDecimalText(%q, %d, %d) = %q, %v; want %q", tt.in, tt.prec, tt.scal, got, err, tt.want)
		}
	}
}

func TestParseDateTimeText(t *testing.T) {
	t.Parallel()
	for _, tt := range []string{
		"1970-01-01", "2024-02-29 23:59:59", "1969-12-31 23:59:59.999999", "0001-01-01 00:00:00",
		"9999-12-31 23:59:59.5", "2000-03-01 12:00:00.123",
	} {
		us, ok, err := parseDateTimeText([]byte(tt))
		layout := "2006-01-02 15:04:05.999999"
		if len(tt) == 10 {
			layout = time.DateOnly
		}
		want, _ := time.Parse(layout, tt)
		if err != nil || !ok || us != want.UnixMicro() {
			t.Errorf("parseDateTimeText(%q) = %d, %v, %v; want %d", tt, us, ok, err, want.UnixMicro())
		}
	}
	for _, tt := range []string{"0000-00-00 00:00:00", "2024-02-30", "2023-02-29 00:00:00", "2024-13-01"} {
		if _, ok, err := parseDateTimeText([]byte(tt)); ok || err != nil {
			t.Errorf("parseDateTimeText(%q) = %v, %v; want not ok (NULL)", tt, ok, err)
		}
	}
	for _, tt := range []string{"2024/01/01", "2024-01-01 1:2:3", "2024-01-01 00:00:00.1234567", "24-01-01"} {
		if _, _, err := parseDateTimeText([]byte(tt)); err == nil {
			t.Errorf("parseDateTimeText(%q): no error", tt)
		}
	}
}

func TestPgArrayJSON(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		kind pgJSONElem
		want string // "" for an error
	}{
		{"{1,2,3}", pgJSONNumber, "[1,2,3]"},
		{"{}", pgJSONString, "[]"},
		{"{{1,2},{3,NULL}}", pgJSONNumber, "[[1,2],[3,null]]"},
		{`{"a\\b","c\"d",plain,"NULL", " sp "}`, pgJSONString, `["a\\b","c\"d","plain","NULL"," sp "]`},
		{"{t,f,NULL}", pgJSONBool, "[true,false,null]"},
		{"{Infinity,-1.5e+20}", pgJSONNumber, `["Infinity",-1.5e+20]`},
		{`{"{\"a\": 1}",null}`, pgJSONRaw, `[{"a": 1},null]`},
		{"[2:3]={x,y}", pgJSONString, `["x","y"]`},
		{"{\"tab\there\"}", pgJSONString, `["tab\there"]`},
		{"{1,2", pgJSONNumber, ""},
		{"{1}x", pgJSONNumber, ""},
		{`{"open}`, pgJSONString, ""},
		{"1,2", pgJSONNumber, ""},
	} {
		got, err := pgArrayJSON(nil, []byte(tt.in), tt.kind)
		if tt.want == "" {
			if err == nil {
				t.Errorf("pgArrayJSON(%q) = %s, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("pgArrayJSON(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

// TestQueryCancelledContext: a ctx cancelled before Next returns stops the stream with the
// ctx's error.
func TestQueryCancelledContext(t *testing.T) {
	t.Parallel()
	src, err := QueryPostgres(context.Background(), "postgres://postgres@"+testPostgresAddr+"/test?sslmode=disable",
		"SELECT generate_series(1, 1000000000)", DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a cancelled ctx = %v, want context.Canceled", err)
	}
	if _, err := src.Next(context.Background()); err == nil {
		t.Error("the stream went on after a failed Next")
	}
}
