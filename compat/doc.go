// Package compat checks that what lakehoused writes is readable by another engine. It is a
// separate module so that the daemon never links DuckDB: the tests write tables through
// lakehoused over the MySQL protocol, replay the Delta log with a small independent reader
// (not lakehoused's txlog), and have DuckDB read the data files and the checkpoint.
//
// DuckDB's own Delta extension is downloaded at run time and cannot be used here (no
// network), so the log is replayed by the test itself; the data files and the checkpoint are
// read by DuckDB's Parquet reader, which is strict about Parquet types.
package compat
