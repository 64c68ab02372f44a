// Package table is the data-file layer of one Delta table: it maps the Delta schema to
// Arrow, writes Arrow record batches as zstd Parquet files and returns the Delta `add`
// actions (with per-file statistics) that make them part of the table, streams files back
// as Arrow record batches with partition, file-statistics and row-group pruning, and
// rewrites files copy-on-write for UPDATE and DELETE.
//
// It does not read or write the transaction log: callers get the live files from txlog
// and commit the actions returned here through a txlog.Committer. See DESIGN.md.
package table
