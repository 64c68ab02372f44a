package table

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// parallelMinRows is the smallest write that WriteBatches splits across writers: below it
// the extra files cost more than the encoding time saved.
const parallelMinRows = 256 << 10

// WriteBatches writes batches (full table schema, in order) as data files and returns their
// add actions. Parquet encoding is single-threaded per file, so a large write is cut into
// contiguous runs of rows, one per core, each encoded by its own Writer at the same time;
// the files of the first run come first, so data written in key order stays in key order
// across files (which is what min/max pruning needs). On error every file written is
// deleted. The caller keeps ownership of batches.
func WriteBatches(ctx context.Context, store storage.Store, schema *txlog.Schema, partitionCols []string, opts WriterOptions, batches []arrow.RecordBatch) ([]*txlog.Add, error) {
	var total int64
	for _, b := range batches {
		total += b.NumRows()
	}
	workers := min(runtime.GOMAXPROCS(0), int(total/parallelMinRows))
	runs := splitRuns(batches, total, max(workers, 1))
	writers := make([]*Writer, len(runs))
	for i := range runs {
		w, err := NewWriter(store, schema, partitionCols, opts)
		if err != nil {
			return nil, err
		}
		writers[i] = w
	}
	adds := make([][]*txlog.Add, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range run {
				if errs[i] = writers[i].Write(ctx, b); errs[i] != nil {
					return
				}
			}
			adds[i], errs[i] = writers[i].Close(ctx)
		}()
	}
	wg.Wait()
	for _, run := range runs {
		for _, b := range run {
			b.Release()
		}
	}
	if err := errors.Join(errs...); err != nil {
		for _, w := range writers {
			_ = w.Abort(context.WithoutCancel(ctx))
		}
		return nil, err
	}
	var out []*txlog.Add
	for _, a := range adds {
		out = append(out, a...)
	}
	return out, nil
}

// splitRuns cuts batches into n runs of about total/n rows each, slicing batches where a
// run ends. Every batch in the result holds its own reference (release each once).
func splitRuns(batches []arrow.RecordBatch, total int64, n int) [][]arrow.RecordBatch {
	runs := make([][]arrow.RecordBatch, 0, n)
	per := (total + int64(n) - 1) / int64(n)
	var cur []arrow.RecordBatch
	var curRows int64
	for _, b := range batches {
		var off int64
		for off < b.NumRows() {
			take := min(b.NumRows()-off, per-curRows)
			if off == 0 && take == b.NumRows() {
				b.Retain()
				cur = append(cur, b)
			} else {
				cur = append(cur, b.NewSlice(off, off+take))
			}
			off += take
			curRows += take
			if curRows == per && len(runs) < n-1 {
				runs = append(runs, cur)
				cur, curRows = nil, 0
			}
		}
	}
	if len(cur) > 0 || len(runs) == 0 {
		runs = append(runs, cur)
	}
	return runs
}
