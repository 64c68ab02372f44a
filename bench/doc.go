// Package bench holds the foundation and maintenance benchmarks of lakehoused. They start one
// node in-process (server.Start on loopback ports, warehouse in a temp dir), talk to it over
// the MySQL protocol with go-sql-driver, exactly as a client would, and print one line per
// figure.
//
// Run them with `make bench` (which runs `go test -run '^$' -bench . -benchtime 1x -v ./bench/`).
// Nothing heavy runs under plain `go test`: benchmarks only run with -bench.
//
// Figures (targets from the foundation issue in brackets):
//
//   - bulk_load_data: LOAD DATA LOCAL INFILE of a generated CSV (LAKEHOUSED_BENCH_ROWS rows,
//     default 10,000,000; 8 mixed columns, id sorted ascending) into a table with PRIMARY KEY
//     (id) → rows/s [>= 500k rows/s]; also the process peak RSS (VmHWM) after the load, and the
//     same load into a table without a key. VmHWM is reset (clear_refs) before each load.
//   - table_files: data files and bytes of the loaded table (lake_files).
//   - insert_autocommit_pk / insert_autocommit_nokey: 4 concurrent clients doing single-row
//     autocommit INSERTs for 5 s each into a fresh table → p50/p99 latency and inserts/s
//     [p50 <= 3 ms].
//   - full_scan_sum: SELECT SUM(d) over the whole table → seconds.
//   - range_1pct: SELECT COUNT(*), SUM(d) WHERE id BETWEEN x AND x+N/100 → seconds, and files
//     read / files considered from the /metrics counter deltas [reads <= 5% of the files].
//   - point_lookup_pk: SELECT id, price … WHERE id = ? for 200 random keys → p50/p99; also
//     50 lookups each with SELECT * and SELECT id, to show how much the projection matters.
//
// BenchmarkMaintenance measures the maintenance figures (see README.md): auto-compaction under
// 10,000 single-row INSERTs (live files, p99 with and without it, full-scan time against the
// same rows in one file), file pruning of 1% ranges on two columns before and after
// lake_zorder (LAKEHOUSED_BENCH_ZORDER_ROWS rows), and cold opens of a 1,000-commit log with
// and without checkpoints.
//
// The loaded tables are created with COMMENT 'delta.targetFileSize=N'
// (LAKEHOUSED_BENCH_TARGET_FILE_SIZE bytes, default 8 MiB); with the default 128 MiB target
// 10M rows give only a handful of files and the range figure says nothing about pruning.
package bench
