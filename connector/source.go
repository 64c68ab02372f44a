// Package connector reads data that lives outside the lakehouse (files on disk, in S3 or
// behind HTTP; MySQL and PostgreSQL servers) as streams of Arrow record batches, and writes
// query results out as files. It knows nothing of SQL engines: sql/ turns a Source into a
// table function and its batches into staged table writes.
package connector

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// Column metadata keys a source may set on its fields, shared with sql/ (which writes the
// same keys into table schemas).
const (
	// MetaMySQLType is the MySQL column type to show for the field, e.g. "varchar(20)",
	// "int unsigned", "json". Without it the type follows from the Delta type.
	MetaMySQLType = "lakehoused.mysql.type"
	// MetaJSON marks a string field that holds JSON documents.
	MetaJSON = "lakehoused.json"
)

// BatchRows is the number of rows a source puts in one batch (the last may hold fewer).
const BatchRows = 64 * 1024

// Source is a stream of record batches with a fixed schema. Sources are not safe for
// concurrent use.
type Source interface {
	// Fields describes the columns as Delta fields; Schema is their Arrow form
	// (table.ArrowSchema of Fields), which every batch has.
	Fields() []txlog.StructField
	Schema() *arrow.Schema
	// Next returns the next batch, or io.EOF after the last one. The caller releases it.
	// Errors name what was being read (file and line, or the server).
	Next(ctx context.Context) (arrow.RecordBatch, error)
	// Progress reports what has been read so far.
	Progress() Progress
	// Close releases files and connections; it is safe to call more than once.
	Close() error
}

// Progress is how far a source has got.
type Progress struct {
	Rows  int64 // rows returned so far
	Bytes int64 // input bytes consumed so far (compressed size for compressed files)
	// TotalBytes is the input size when known in advance (files), else 0.
	TotalBytes int64
}

// ArrowSchemaOf is table.ArrowSchema over a field list.
func ArrowSchemaOf(fields []txlog.StructField) (*arrow.Schema, error) {
	return table.ArrowSchema(&txlog.Schema{Type: "struct", Fields: fields})
}
