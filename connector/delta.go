package connector

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// OpenDelta reads the Delta table at rawURL (a directory holding _delta_log) at version
// (-1: the latest) without attaching it: every live file of that snapshot, in file order.
func OpenDelta(ctx context.Context, res *Resolver, rawURL string, version int64) (Source, error) {
	store, err := res.Store(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	snap, err := txlog.NewLog(store).Snapshot(ctx, version)
	if err != nil {
		if errors.Is(err, txlog.ErrNoTable) {
			return nil, fmt.Errorf("%s is not a Delta table (no _delta_log)", rawURL)
		}
		return nil, fmt.Errorf("reading the Delta log of %s: %w", rawURL, err)
	}
	if err := snap.CheckRead(); err != nil {
		return nil, err
	}
	return DeltaSnapshot(ctx, store, snap)
}

// DeltaSnapshot reads every live file of snap, a snapshot of the table in store.
func DeltaSnapshot(ctx context.Context, store storage.Store, snap *txlog.Snapshot) (Source, error) {
	sc, err := table.Scan(ctx, store, snap.Schema, snap.Metadata.PartitionColumns, snap.Files, table.ScanOptions{BatchRows: BatchRows})
	if err != nil {
		return nil, err
	}
	d := &deltaSource{scan: sc, fields: snap.Schema.Fields}
	for _, f := range snap.Files {
		d.progress.TotalBytes += f.Size
	}
	return d, nil
}

type deltaSource struct {
	scan     *table.Scanner
	fields   []txlog.StructField
	progress Progress
	last     *txlog.Add
}

func (d *deltaSource) Fields() []txlog.StructField { return d.fields }
func (d *deltaSource) Schema() *arrow.Schema       { return d.scan.Schema() }
func (d *deltaSource) Progress() Progress          { return d.progress }
func (d *deltaSource) Close() error                { return d.scan.Close() }

func (d *deltaSource) Next(ctx context.Context) (arrow.RecordBatch, error) {
	rec, add, err := d.scan.Next()
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, io.EOF
	}
	if add != d.last && d.last != nil {
		d.progress.Bytes += d.last.Size
	}
	d.last = add
	d.progress.Rows += rec.NumRows()
	return rec, nil
}
