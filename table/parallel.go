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
	s, err := SealBatches(ctx, store, schema, partitionCols, opts, batches)
	if err != nil {
		return nil, err
	}
	return s.Store(ctx)
}

// Sealed is the result of SealBatches: final add actions whose last files are encoded but
// not yet stored.
type Sealed struct {
	Adds    []*txlog.Add
	writers []*Writer
	puts    []func(context.Context) error
}

// Put stores the files not yet stored; it must succeed before the adds are committed.
func (s *Sealed) Put(ctx context.Context) error {
	errs := make([]error, len(s.puts))
	parallel(len(s.puts), func(i int) { errs[i] = s.puts[i](ctx) })
	return errors.Join(errs...)
}

// Store is Put, then Abort if Put failed; it returns the adds.
func (s *Sealed) Store(ctx context.Context) ([]*txlog.Add, error) {
	if err := s.Put(ctx); err != nil {
		s.Abort(ctx)
		return nil, err
	}
	return s.Adds, nil
}

// Abort deletes every file stored for these adds (before or after Put).
func (s *Sealed) Abort(ctx context.Context) {
	for _, w := range s.writers {
		_ = w.Abort(context.WithoutCancel(ctx))
	}
}

// SealBatches is WriteBatches up to the last files, which it encodes without storing (see
// Writer.Seal): the caller stores them with Put, at the same time as it prepares the
// commit, and calls Abort if the commit does not happen.
func SealBatches(ctx context.Context, store storage.Store, schema *txlog.Schema, partitionCols []string, opts WriterOptions, batches []arrow.RecordBatch) (*Sealed, error) {
	var total int64
	for _, b := range batches {
		total += b.NumRows()
	}
	workers := min(runtime.GOMAXPROCS(0), int(total/parallelMinRows))
	runs := splitRuns(batches, total, max(workers, 1))
	defer func() {
		for _, run := range runs {
			for _, b := range run {
				b.Release()
			}
		}
	}()
	s := &Sealed{writers: make([]*Writer, len(runs)), puts: make([]func(context.Context) error, len(runs))}
	for i := range runs {
		w, err := NewWriter(store, schema, partitionCols, opts)
		if err != nil {
			return nil, err
		}
		s.writers[i] = w
	}
	adds := make([][]*txlog.Add, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range run {
				if errs[i] = s.writers[i].Write(ctx, b); errs[i] != nil {
					return
				}
			}
			adds[i], s.puts[i], errs[i] = s.writers[i].Seal()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.Abort(ctx)
		return nil, err
	}
	for _, a := range adds {
		s.Adds = append(s.Adds, a...)
	}
	return s, nil
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
