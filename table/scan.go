package table

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// ScanOptions tunes Scan. Zero values take the defaults.
type ScanOptions struct {
	// Columns projects by name (case-insensitive); nil means all columns in schema order.
	Columns []string
	// Filter enables row-group pruning inside each file (file pruning is PruneFiles). nil
	// means no pruning. Rows are not filtered: the caller evaluates its predicate.
	Filter *Filter
	// BatchRows is the maximum rows per record; default 8192.
	BatchRows int
	// Prefetch is how many files are decoded ahead of the consumer by background
	// goroutines; default 2, so that with the consumer both cores of a small machine stay
	// busy. Negative means no read-ahead (one file at a time, still in the background).
	Prefetch int
	// Allocator for Arrow buffers; default memory.DefaultAllocator.
	Allocator memory.Allocator
}

// Scanner streams the records of a scan in file order. It is used by one goroutine.
type Scanner struct {
	schema    *arrow.Schema
	files     []*txlog.Add
	results   []chan scanItem // one per file, filled by that file's worker
	cur       int
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	filesRead atomic.Int64
	closed    bool
	err       error // first error; the scan stops there
}

type scanItem struct {
	rec arrow.RecordBatch
	err error
}

// scanPlan is what every file worker needs to know; it is read-only once built.
type scanPlan struct {
	store     storage.Store
	mem       memory.Allocator
	out       *arrow.Schema
	cols      []planCol
	batchRows int
	rgChecks  []rgCheck
}

// planCol is one output column.
type planCol struct {
	name      string // schema spelling
	partition bool
}

// rgCheck is a filter column usable for row-group pruning (a non-partition, top-level
// primitive column).
type rgCheck struct {
	cf   *ColumnFilter
	name string
	kind valueKind
}

// Scan reads the given files as records whose schema is the projected table schema.
// Columns missing from a file (added by a later ADD COLUMN) read as NULL; partition
// columns are materialised from Add.PartitionValues. Records arrive in file order and each
// is paired with the add of the file it came from. Close the scanner when done, even
// after an error.
func Scan(ctx context.Context, store storage.Store, schema *txlog.Schema, partitionCols []string, files []*txlog.Add, opts ScanOptions) (*Scanner, error) {
	full, err := ArrowSchema(schema)
	if err != nil {
		return nil, err
	}
	if _, err := partitionFields(schema, partitionCols); err != nil {
		return nil, err
	}
	isPart := func(name string) bool {
		for _, p := range partitionCols {
			if strings.EqualFold(p, name) {
				return true
			}
		}
		return false
	}
	plan := &scanPlan{store: store, mem: opts.Allocator, batchRows: opts.BatchRows}
	if plan.mem == nil {
		plan.mem = memory.DefaultAllocator
	}
	if plan.batchRows <= 0 {
		plan.batchRows = 8192
	}
	var fields []arrow.Field
	addCol := func(i int) {
		f := schema.Fields[i]
		plan.cols = append(plan.cols, planCol{name: f.Name, partition: isPart(f.Name)})
		fields = append(fields, full.Field(i))
	}
	if opts.Columns == nil {
		for i := range schema.Fields {
			addCol(i)
		}
	} else {
		for _, c := range opts.Columns {
			i := fieldIndex(schema.Fields, c)
			if i < 0 {
				return nil, fmt.Errorf("table: no column %q to scan; columns are: %s", c, columnNames(schema.Fields))
			}
			addCol(i)
		}
	}
	plan.out = arrow.NewSchema(fields, nil)
	if opts.Filter != nil {
		for i := range opts.Filter.Columns {
			cf := &opts.Filter.Columns[i]
			j := fieldIndex(schema.Fields, cf.Column)
			if j < 0 || isPart(schema.Fields[j].Name) {
				continue
			}
			if k := kindOf(schema.Fields[j].Type); k != kindNone {
				plan.rgChecks = append(plan.rgChecks, rgCheck{cf: cf, name: schema.Fields[j].Name, kind: k})
			}
		}
	}

	prefetch := opts.Prefetch
	if prefetch == 0 {
		prefetch = 2
	}
	if prefetch < 0 {
		prefetch = 0
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Scanner{schema: plan.out, files: files, ctx: ctx, cancel: cancel, results: make([]chan scanItem, len(files))}
	for i := range s.results {
		s.results[i] = make(chan scanItem, 2)
	}
	// Workers start in file order and each holds a slot until its file is fully handed
	// over. The consumer always drains the lowest unfinished file, whose worker already
	// has a slot, so the pipeline cannot deadlock; at most prefetch+1 files are in flight.
	slots := make(chan struct{}, prefetch+1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for i, add := range files {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				for _, ch := range s.results[i:] {
					close(ch)
				}
				return
			}
			s.wg.Add(1)
			go func(ch chan scanItem, add *txlog.Add) {
				defer s.wg.Done()
				defer func() { <-slots }()
				defer close(ch)
				if err := plan.readFile(ctx, add, ch, &s.filesRead); err != nil {
					select {
					case ch <- scanItem{err: err}:
					case <-ctx.Done():
					}
				}
			}(s.results[i], add)
		}
	}()
	return s, nil
}

// Schema is the schema of every record: the projected table schema.
func (s *Scanner) Schema() *arrow.Schema { return s.schema }

// FilesRead counts the files actually opened so far (files whose row groups were all
// pruned still count; files pruned by PruneFiles never reach Scan).
func (s *Scanner) FilesRead() int { return int(s.filesRead.Load()) }

// Next returns the next record and the file it came from, or io.EOF after the last. The
// caller releases the record.
func (s *Scanner) Next() (arrow.RecordBatch, *txlog.Add, error) {
	if s.closed {
		return nil, nil, errors.New("table: Next on a closed Scanner")
	}
	if s.err != nil {
		return nil, nil, s.err
	}
	for s.cur < len(s.results) {
		it, ok := <-s.results[s.cur]
		if !ok {
			// A worker stops early only when the context ends; that must not look like
			// the end of the data.
			if err := s.ctx.Err(); err != nil {
				s.err = fmt.Errorf("table: scan stopped: %w", err)
				return nil, nil, s.err
			}
			s.cur++
			continue
		}
		if it.err != nil {
			s.err = it.err
			return nil, nil, it.err
		}
		return it.rec, s.files[s.cur], nil
	}
	return nil, nil, io.EOF
}

// Close stops the background readers, waits for them to exit and releases records that
// were decoded but not consumed.
func (s *Scanner) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	s.wg.Wait()
	for _, ch := range s.results {
		for it := range ch {
			if it.rec != nil {
				it.rec.Release()
			}
		}
	}
	return nil
}

// readFile decodes one data file and sends its records to ch.
func (p *scanPlan) readFile(ctx context.Context, add *txlog.Add, ch chan<- scanItem, opened *atomic.Int64) error {
	if add.DeletionVector != nil {
		return fmt.Errorf("table: data file %s has a deletion vector; tables with deletion vectors are not supported", add.Path)
	}
	key, err := addPathToKey(add.Path, p.store.URL())
	if err != nil {
		return err
	}
	rc, size, err := p.store.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("table: opening data file %s: %w", key, err)
	}
	defer rc.Close()
	opened.Add(1)
	props := parquet.NewReaderProperties(p.mem)
	pf, err := file.NewParquetReader(io.NewSectionReader(rc, 0, size), file.WithReadProps(props))
	if err != nil {
		return fmt.Errorf("table: reading Parquet footer of %s: %w", key, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(p.batchRows)}, p.mem)
	if err != nil {
		return fmt.Errorf("table: reading Parquet schema of %s: %w", key, err)
	}

	// Map output columns to top-level fields of the file, by name ignoring case.
	fileFields := fr.Manifest.Fields
	fileIdx := make([]int, len(p.cols))
	var leaves []int
	for i, c := range p.cols {
		fileIdx[i] = -1
		if c.partition {
			continue
		}
		for j := range fileFields {
			if strings.EqualFold(fileFields[j].Field.Name, c.name) {
				fileIdx[i] = j
				if !slices.Contains(fileIdx[:i], j) { // a column projected twice is read once
					leaves = appendLeaves(leaves, &fileFields[j])
				}
				break
			}
		}
	}
	rowGroups := p.pruneRowGroups(pf, fileFields)
	if len(rowGroups) == 0 {
		return nil
	}
	if len(leaves) == 0 {
		// Only partition columns or columns the file lacks: the row count is all we need.
		var n int64
		for _, rg := range rowGroups {
			n += pf.MetaData().RowGroup(rg).NumRows()
		}
		for n > 0 {
			m := min(n, int64(p.batchRows))
			rec, err := p.assemble(ctx, add, nil, fileIdx, fileFields, m)
			if err != nil {
				return err
			}
			if !send(ctx, ch, rec) {
				return nil
			}
			n -= m
		}
		return nil
	}
	rr, err := fr.GetRecordReader(ctx, leaves, rowGroups)
	if err != nil {
		return fmt.Errorf("table: reading %s: %w", key, err)
	}
	defer rr.Release()
	for rr.Next() {
		rec, err := p.assemble(ctx, add, rr.RecordBatch(), fileIdx, fileFields, rr.RecordBatch().NumRows())
		if err != nil {
			return fmt.Errorf("table: decoding %s: %w", key, err)
		}
		if !send(ctx, ch, rec) {
			return nil
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("table: decoding %s: %w", key, err)
	}
	return nil
}

func send(ctx context.Context, ch chan<- scanItem, rec arrow.RecordBatch) bool {
	select {
	case ch <- scanItem{rec: rec}:
		return true
	case <-ctx.Done():
		rec.Release()
		return false
	}
}

func appendLeaves(dst []int, f *pqarrow.SchemaField) []int {
	if f.IsLeaf() {
		return append(dst, f.ColIndex)
	}
	for i := range f.Children {
		dst = appendLeaves(dst, &f.Children[i])
	}
	return dst
}

// assemble builds one output record of n rows from a decoded batch of the file (nil when
// no file column was read).
func (p *scanPlan) assemble(ctx context.Context, add *txlog.Add, src arrow.RecordBatch, fileIdx []int, fileFields []pqarrow.SchemaField, n int64) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, len(p.cols))
	release := func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}
	for i, c := range p.cols {
		want := p.out.Field(i).Type
		switch {
		case c.partition:
			s, present := lookupFold(add.PartitionValues, c.name)
			b := array.NewBuilder(p.mem, want)
			err := constantArray(b, want, s, present, int(n))
			if err == nil {
				cols[i] = b.NewArray()
			}
			b.Release()
			if err != nil {
				release()
				return nil, fmt.Errorf("partition column %q of %s: %w", c.name, add.Path, err)
			}
		case fileIdx[i] >= 0 && src != nil:
			j := arrowFieldIndex(src.Schema().Fields(), fileFields[fileIdx[i]].Field.Name)
			if j < 0 {
				release()
				return nil, fmt.Errorf("column %q missing from decoded batch", c.name)
			}
			a, err := conform(ctx, p.mem, src.Column(j), want)
			if err != nil {
				release()
				return nil, fmt.Errorf("column %q: %w", c.name, err)
			}
			cols[i] = a
		default:
			cols[i] = array.MakeArrayOfNull(p.mem, want, int(n))
		}
	}
	rec := array.NewRecordBatch(p.out, cols, n)
	release()
	return rec, nil
}
