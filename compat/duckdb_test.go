package compat

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/go-sql-driver/mysql"

	"github.com/lakehoused/lakehoused/internal/testdata"
	"github.com/lakehoused/lakehoused/server"
)

// TestDuckDBReadsWhatLakehousedWrites writes tables with every type, partitions (including
// NULL partition values), updates and deletes, and enough commits for a checkpoint; then
// DuckDB must read exactly the rows lakehoused returns, from the files the log names.
func TestDuckDBReadsWhatLakehousedWrites(t *testing.T) {
	dir := t.TempDir()
	srv, err := server.Start(context.Background(), server.Config{
		DataDir: dir, MySQLAddr: "127.0.0.1:0", HTTPAddr: "off", Version: "compat",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.ParseTime = "root", "tcp", srv.MySQLAddr(), true
	my, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	my.SetMaxOpenConns(1)
	exec := func(q string) {
		t.Helper()
		if _, err := my.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE DATABASE c")
	exec(`CREATE TABLE c.ty (id INT PRIMARY KEY, b BOOLEAN, ti TINYINT, si SMALLINT, bi BIGINT, bu BIGINT UNSIGNED,
		f FLOAT, d DOUBLE, dec1 DECIMAL(18,4), vc VARCHAR(40), j JSON, bin VARBINARY(8), dt DATE, dtm DATETIME(6))`)
	for i := 1; i <= 12; i++ { // 12 commits: a checkpoint at version 10
		exec(fmt.Sprintf(`INSERT INTO c.ty VALUES (%d, %d, %d, %d, %d, %d, %d.5, %d.25, %d.0125, 'v%d héllo', '{"k": %d}', 'b%d',
			'2026-11-%02d', '2026-11-%02d 10:11:12.%06d')`, i, i%2, -i, i*100, int64(i)<<40, uint64(1)<<63+uint64(i), i, i, i, i, i, i, i, i, i*1001))
	}
	exec("INSERT INTO c.ty (id) VALUES (100)") // NULLs everywhere
	exec("UPDATE c.ty SET vc = 'changed', dec1 = -1.5 WHERE id = 3")
	exec("DELETE FROM c.ty WHERE id IN (4, 5)")
	exec(`CREATE TABLE c.parts (id INT, region VARCHAR(8), day DATE, v DOUBLE) COMMENT 'partition_by=region,day'`)
	exec(`INSERT INTO c.parts VALUES (1, 'eu', '2026-11-01', 1.5), (2, 'us', '2026-11-01', 2.5), (3, NULL, '2026-11-02', 3.5),
		(4, 'a b/c', NULL, 4.5), (5, 'eu', '2026-11-01', 5.5)`)
	exec("DELETE FROM c.parts WHERE id = 5")
	// Files rewritten by maintenance (OPTIMIZE, ZORDER; dataChange=false) read the same.
	exec(`CREATE TABLE c.opt (id INT, region VARCHAR(8), v DOUBLE) COMMENT 'partition_by=region'`)
	for i := 0; i < 6; i++ {
		exec(fmt.Sprintf("INSERT INTO c.opt VALUES (%d, 'eu', %d.5), (%d, 'us', %d.25)", 2*i, i, 2*i+1, 10-i))
	}
	exec("CALL lake_zorder('c.opt', 'v', 'region = ''us''')")
	exec("CALL lake_optimize('c.opt')")

	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()

	for _, tc := range []struct {
		table, cols string
		parts       []string
	}{
		{"ty", "id, b, ti, si, bi, bu, f, d, dec1, vc, j, bin, dt, dtm", nil},
		{"parts", "id, v, region, day", []string{"region", "day"}},
		{"opt", "id, v, region", []string{"region"}},
	} {
		tableDir := filepath.Join(dir, "c", tc.table)
		live, version := replayLog(t, tableDir)
		var got []string
		for path, pv := range live {
			q := fmt.Sprintf("SELECT * FROM read_parquet('%s', hive_partitioning = false)", filepath.Join(tableDir, path))
			rows, err := duck.Query(q)
			if err != nil {
				t.Fatalf("DuckDB cannot read %s: %v", path, err)
			}
			for _, r := range scanAll(t, rows) {
				for _, p := range tc.parts {
					if v, ok := pv[p]; ok && v != nil {
						r = append(r, canonical(*v))
					} else {
						r = append(r, "NULL")
					}
				}
				got = append(got, strings.Join(r, "|"))
			}
		}
		rows, err := my.Query(fmt.Sprintf("SELECT %s FROM c.%s", tc.cols, tc.table))
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, r := range scanAll(t, rows) {
			want = append(want, strings.Join(r, "|"))
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s (version %d): DuckDB reads\n%s\nlakehoused returns\n%s", tc.table, version, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		t.Logf("%s: DuckDB read %d rows from %d files of version %d", tc.table, len(got), len(live), version)
	}

	// DuckDB reads the checkpoint lakehoused wrote at version 10, and it names the same live
	// files as replaying commits 0..10.
	cp := filepath.Join(dir, "c", "ty", "_delta_log", fmt.Sprintf("%020d.checkpoint.parquet", 10))
	waitFor(t, cp)
	var adds, protocols, metas int
	err = duck.QueryRow(fmt.Sprintf(`SELECT count(add), count(protocol), count(metaData) FROM read_parquet('%s')`, cp)).Scan(&adds, &protocols, &metas)
	if err != nil {
		t.Fatalf("DuckDB cannot read the checkpoint: %v", err)
	}
	live10, _ := replayLogUpTo(t, filepath.Join(dir, "c", "ty"), 10)
	if adds != len(live10) || protocols != 1 || metas != 1 {
		t.Errorf("checkpoint v10: %d adds, %d protocol, %d metaData; replay of commits 0..10 has %d live files", adds, protocols, metas, len(live10))
	}
}

func waitFor(t *testing.T, path string) {
	for i := 0; i < 100; i++ { // checkpoints are written in the background
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s was not written", path)
}

// replayLog is a deliberately small, independent Delta log replay: adds minus removes by
// path, over every commit file in order (no checkpoints).
func replayLog(t *testing.T, tableDir string) (map[string]map[string]*string, int64) {
	return replayLogUpTo(t, tableDir, 1<<62)
}

func replayLogUpTo(t *testing.T, tableDir string, upTo int64) (map[string]map[string]*string, int64) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(tableDir, "_delta_log", "*.json"))
	sort.Strings(files)
	live := map[string]map[string]*string{}
	version := int64(-1)
	for _, f := range files {
		var v int64
		if _, err := fmt.Sscanf(filepath.Base(f), "%020d.json", &v); err != nil || v > upTo {
			continue
		}
		version = v
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var a struct {
				Add *struct {
					Path            string             `json:"path"`
					PartitionValues map[string]*string `json:"partitionValues"`
				} `json:"add"`
				Remove *struct {
					Path string `json:"path"`
				} `json:"remove"`
			}
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				t.Fatalf("%s: not JSON lines: %v", f, err)
			}
			if a.Add != nil {
				p, err := url.PathUnescape(a.Add.Path)
				if err != nil {
					t.Fatal(err)
				}
				pv := a.Add.PartitionValues
				for k, v := range pv {
					if v != nil && *v == "" {
						pv[k] = nil // "" is NULL in partitionValues
					}
				}
				live[p] = pv
			}
			if a.Remove != nil {
				p, _ := url.PathUnescape(a.Remove.Path)
				delete(live, p)
			}
		}
		fh.Close()
	}
	return live, version
}

func scanAll(t *testing.T, rows *sql.Rows) [][]string {
	t.Helper()
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		r := make([]string, len(vals))
		for i, v := range vals {
			r[i] = canonical(v)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// canonical adds DuckDB's own Go types to the shared canonical form.
func canonical(v any) string {
	switch x := v.(type) {
	case duckdb.Decimal:
		return new(big.Rat).SetFrac(x.Value, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(x.Scale)), nil)).RatString()
	case *big.Int:
		return x.String()
	}
	return testdata.Canonical(v)
}
