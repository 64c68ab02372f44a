package table

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// Rewrite is copy-on-write for UPDATE and DELETE. It reads each file and calls fn with
// each record (full table schema, partition columns included). fn returns the replacement
// record (nil drops all its rows; returning rec itself keeps them) and whether anything
// changed. fn must not release rec; a different record it returns is released by Rewrite.
//
// Files in which fn changed nothing are left alone. Every changed file is replaced: its
// kept and new rows are written to new files (re-partitioned, so an UPDATE of a partition
// column moves rows), and a remove (dataChange=true, deletionTimestamp now) is returned for
// it. On error the new files are deleted and nothing is returned; the caller commits the
// adds and removes together, and calls nothing else on failure.
func Rewrite(ctx context.Context, store storage.Store, schema *txlog.Schema, partitionCols []string, files []*txlog.Add, opts WriterOptions,
	fn func(rec arrow.RecordBatch) (arrow.RecordBatch, bool, error)) (adds []*txlog.Add, removes []*txlog.Remove, err error) {
	opts = opts.withDefaults()
	w, err := NewWriter(store, schema, partitionCols, opts)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			if aerr := w.Abort(context.WithoutCancel(ctx)); aerr != nil {
				err = errors.Join(err, aerr)
			}
			adds, removes = nil, nil
		}
	}()
	sc, err := Scan(ctx, store, schema, partitionCols, files, ScanOptions{Allocator: opts.Allocator})
	if err != nil {
		return nil, nil, err
	}
	defer sc.Close()

	// Outputs of the current file are held back until fn changes something in it: only
	// then are they written, and a file fn leaves alone costs no write at all.
	var (
		cur     *txlog.Add
		held    []arrow.RecordBatch
		changed bool
	)
	releaseHeld := func() {
		for _, r := range held {
			r.Release()
		}
		held = nil
	}
	defer releaseHeld()
	endFile := func() {
		if cur != nil && changed {
			removes = append(removes, removeFor(cur, opts.Now().UnixMilli()))
		}
		releaseHeld()
		changed = false
	}
	for {
		rec, add, err := sc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if add != cur {
			endFile()
			cur = add
		}
		out, ch, err := fn(rec)
		if err != nil {
			if out != nil && out != rec {
				out.Release()
			}
			rec.Release()
			return nil, nil, fmt.Errorf("table: rewriting %s: %w", add.Path, err)
		}
		if out != nil && out == rec {
			out.Retain() // held or written below independently of rec
		}
		rec.Release()
		if ch && !changed {
			changed = true
			for _, r := range held {
				if err := w.Write(ctx, r); err != nil {
					if out != nil {
						out.Release()
					}
					return nil, nil, err
				}
			}
			releaseHeld()
		}
		if out == nil {
			continue
		}
		if !changed {
			held = append(held, out)
			continue
		}
		err = w.Write(ctx, out)
		out.Release()
		if err != nil {
			return nil, nil, err
		}
	}
	endFile()
	adds, err = w.Close(ctx)
	if err != nil {
		return nil, nil, err
	}
	return adds, removes, nil
}

func removeFor(a *txlog.Add, now int64) *txlog.Remove {
	ext := true
	size := a.Size
	return &txlog.Remove{
		Path:                 a.Path,
		DeletionTimestamp:    &now,
		DataChange:           true,
		ExtendedFileMetadata: &ext,
		PartitionValues:      a.PartitionValues,
		Size:                 &size,
		Stats:                a.Stats,
		Tags:                 a.Tags,
	}
}
