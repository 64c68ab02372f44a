package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/internal/s3test"
	"github.com/lakehoused/lakehoused/server"
	"github.com/lakehoused/lakehoused/storage"
)

// BenchmarkConnectors measures the connector figures: CSV → table and Parquet → table
// (local disk and S3) through CREATE TABLE … AS SELECT over read_csv / read_parquet, and
// MariaDB → table through mysql_query next to SELECT … INTO OUTFILE + LOAD DATA of the same
// rows, in the same run.
func BenchmarkConnectors(b *testing.B) {
	onlyPart(b, "connectors")
	rows := envInt("LAKEHOUSED_BENCH_CONNECTOR_ROWS", 10_000_000)
	mariaRows := envInt("LAKEHOUSED_BENCH_MARIADB_ROWS", 1_000_000)
	dir := benchDir(b)
	imp := filepath.Join(dir, "import")
	if err := os.MkdirAll(imp, 0o755); err != nil {
		b.Fatal(err)
	}
	csv := filepath.Join(imp, "rows.csv")
	size, err := writeCSV(csv, rows)
	if err != nil {
		b.Fatal(err)
	}
	g := s3test.Start(b)
	s3cfg := storage.S3Config{Endpoint: g.Endpoint, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Region: "us-east-1"}
	srv, err := server.Start(context.Background(), server.Config{
		DataDir: filepath.Join(dir, "data"), ImportDirs: []string{imp}, S3: s3cfg,
		MySQLAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ShutdownGrace: time.Second, Version: "bench",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	n := &node{srv: srv, dataDir: filepath.Join(dir, "data")}
	db := n.open(b, "", 1)
	mustExec(b, db, "CREATE DATABASE "+dbName)
	db.Close()
	db = n.open(b, dbName, 1)
	const cols = "id BIGINT,qty INT,price DOUBLE,amount DECIMAL(12,2),region VARCHAR(16),name VARCHAR(32),day DATE,ts DATETIME"
	for i := 0; i < b.N; i++ {
		figures = nil
		timed := func(name, q string, want int64, unit string) time.Duration {
			progress("%s …", name)
			fast := n.metrics(b)["lakehoused_insert_select_fast_total"]
			resetPeakRSS()
			start := time.Now()
			mustExec(b, db, q)
			d := time.Since(start)
			peak := vmHWM()
			checkRows(b, db, name, want)
			path := "row path"
			if n.metrics(b)["lakehoused_insert_select_fast_total"] > fast {
				path = "Arrow fast path"
			}
			bytes := queryInt(b, db, "SELECT CAST(SUM(size_bytes) AS SIGNED) FROM lake_files('"+dbName+"."+name+"')")
			figure("%s: %d rows in %.2fs = %s rows/s%s (%s; table %s; peak RSS %s)", name, want, d.Seconds(), rate(want, d), unit, path, mib(bytes), mib(peak))
			return d
		}
		timed("csv_to_table", fmt.Sprintf("CREATE TABLE csv_to_table AS SELECT * FROM read_csv('file://%s', 'header=false, columns=%s')", csv, cols),
			rows, fmt.Sprintf(" from a %s CSV (goal >= 1M rows/s)", mib(size)))
		progress("exporting the table as Parquet …")
		start := time.Now()
		mustExec(b, db, "CALL lake_export('SELECT * FROM csv_to_table', 'file://"+imp+"/pq/rows.parquet', 'parquet')")
		figure("export_parquet: %d rows in %.2fs = %s rows/s", rows, time.Since(start).Seconds(), rate(rows, time.Since(start)))
		timed("parquet_to_table", "CREATE TABLE parquet_to_table AS SELECT * FROM read_parquet('file://"+imp+"/pq/**/*.parquet')", rows, " local disk (goal >= 2M rows/s)")
		mustExec(b, db, "CALL lake_export('SELECT * FROM csv_to_table', 's3://"+g.Bucket+"/pq/rows.parquet', 'parquet')")
		timed("parquet_s3_to_table", "CREATE TABLE parquet_s3_to_table AS SELECT * FROM read_parquet('s3://"+g.Bucket+"/pq/**/*.parquet')", rows, " from S3 (versitygw on loopback)")
		mariaFigures(b, db, mariaRows)
		fmt.Println("\n=== connector figures ===")
		for _, f := range figures {
			fmt.Println(f)
		}
	}
}

// mariaFigures copies mariaRows rows of the benchmark's 8 columns out of the machine's
// MariaDB twice: through mysql_query, and through SELECT … INTO OUTFILE on the MariaDB side
// plus LOAD DATA LOCAL INFILE into lakehoused (the way without a connector).
func mariaFigures(b *testing.B, db *sql.DB, rows int64) {
	maria, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/test")
	if err != nil {
		b.Fatal(err)
	}
	defer maria.Close()
	if err := maria.Ping(); err != nil {
		b.Fatalf("MariaDB at 127.0.0.1:3306: %v (.ci/run starts it)", err)
	}
	schema := fmt.Sprintf("lkd_bench_%d", os.Getpid())
	mustExec(b, maria, "CREATE DATABASE "+schema)
	defer maria.Exec("DROP DATABASE " + schema)
	progress("MariaDB: generating %d rows …", rows)
	mustExec(b, maria, fmt.Sprintf(`CREATE TABLE %s.src (id BIGINT PRIMARY KEY, qty INT, price DOUBLE, amount DECIMAL(12,2),
		region VARCHAR(16), name VARCHAR(32), day DATE, ts DATETIME)
		SELECT seq AS id, seq %% 1000000 AS qty, seq * 1.25 AS price, (seq %% 100000) / 100 AS amount,
		ELT(1 + seq %% 8, 'eu-west', 'eu-north', 'us-east', 'us-west', 'ap-south', 'ap-east', 'sa-east', 'af-south') AS region,
		CONCAT('n-', HEX(seq * 2654435761)) AS name, DATE('2020-01-01') + INTERVAL (seq %% 1800) DAY AS day,
		TIMESTAMP('2020-01-01') + INTERVAL seq SECOND AS ts FROM seq_1_to_%d`, schema, rows))
	src := "mysql_query('mysql://root@127.0.0.1:3306/" + schema + "', 'SELECT * FROM src')"
	progress("mysql_query copy …")
	start := time.Now()
	mustExec(b, db, "CREATE TABLE maria_copy AS SELECT * FROM "+src)
	viaQuery := time.Since(start)
	checkRows(b, db, "maria_copy", rows)
	out := filepath.Join(os.TempDir(), fmt.Sprintf("lkd-bench-%d.csv", os.Getpid()))
	os.Remove(out)
	defer os.Remove(out)
	progress("INTO OUTFILE + LOAD DATA …")
	mustExec(b, db, "CREATE TABLE maria_load LIKE maria_copy")
	start = time.Now()
	mustExec(b, maria, fmt.Sprintf("SELECT * FROM %s.src INTO OUTFILE '%s' FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n'", schema, out))
	dumped := time.Since(start)
	mustExec(b, db, fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE maria_load FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n'", out))
	viaFile := time.Since(start)
	checkRows(b, db, "maria_load", rows)
	figure("mariadb_mysql_query: %d rows in %.2fs = %s rows/s", rows, viaQuery.Seconds(), rate(rows, viaQuery))
	figure("mariadb_outfile_load_data: %d rows in %.2fs = %s rows/s (INTO OUTFILE %.2fs + LOAD DATA %.2fs); mysql_query takes %.2fx its time",
		rows, viaFile.Seconds(), rate(rows, viaFile), dumped.Seconds(), (viaFile - dumped).Seconds(), viaQuery.Seconds()/viaFile.Seconds())
}
