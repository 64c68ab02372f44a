package sql

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	gms "github.com/dolthub/go-mysql-server/sql"

	"github.com/lakehoused/lakehoused/catalog"
	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// Table is one Delta table at one pinned version, as GMS sees it.
type Table struct {
	db     *Database
	ct     *catalog.Table
	snap   *txlog.Snapshot
	asOf   bool // time travel: read-only
	schema gms.PrimaryKeySchema
	pkCols []string

	projected []string   // nil = all columns
	projSch   gms.Schema // schema of the projected rows
	lookup    *gms.IndexLookup
	// prune is a hint from the WHERE clause above this scan (see prune.go): files and row
	// groups whose statistics exclude it are skipped; the filter still checks every row.
	prune *table.Filter
	// points serves the point lookups of a lookup join (see pointcache.go); shared by the
	// copies GMS makes of an indexed table for each lookup.
	points *pointCache
}

var (
	_ gms.Table                 = (*Table)(nil)
	_ gms.ProjectedTable        = (*Table)(nil)
	_ gms.PrimaryKeyTable       = (*Table)(nil)
	_ gms.InsertableTable       = (*Table)(nil)
	_ gms.UpdatableTable        = (*Table)(nil)
	_ gms.DeletableTable        = (*Table)(nil)
	_ gms.ReplaceableTable      = (*Table)(nil)
	_ gms.TruncateableTable     = (*Table)(nil)
	_ gms.IndexAddressableTable = (*Table)(nil)
	_ gms.StatisticsTable       = (*Table)(nil)
	_ gms.CommentedTable        = (*Table)(nil)
	_ gms.AlterableTable        = (*Table)(nil)
)

func newTable(ctx *gms.Context, db *Database, ct *catalog.Table, snap *txlog.Snapshot, asOf bool) (*Table, error) {
	pk := primaryKeyColumns(snap)
	sch, err := gmsColumns(ctx, ct.Entry.Name, snap.Schema, pk)
	if err != nil {
		return nil, err
	}
	return &Table{db: db, ct: ct, snap: snap, asOf: asOf, schema: sch, pkCols: pk, projSch: sch.Schema}, nil
}

func primaryKeyColumns(snap *txlog.Snapshot) []string {
	s := snap.Metadata.Configuration[propPrimaryKey]
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func (t *Table) Name() string                           { return t.ct.Entry.Name }
func (t *Table) String() string                         { return t.ct.Entry.Name }
func (t *Table) Schema() gms.Schema                     { return t.projSch }
func (t *Table) Collation() gms.CollationID             { return gms.Collation_Default }
func (t *Table) PrimaryKeySchema() gms.PrimaryKeySchema { return t.schema }

// Comment is what SHOW CREATE TABLE prints as COMMENT: the partitioning and table properties,
// in the same form CREATE TABLE accepts, then the user's comment.
func (t *Table) Comment() string {
	var parts []string
	if pc := t.snap.Metadata.PartitionColumns; len(pc) > 0 {
		parts = append(parts, "partition_by="+strings.Join(pc, ","))
	}
	var props []string
	for k, v := range t.snap.Metadata.Configuration {
		if _, ok := tableProperties[k]; ok {
			props = append(props, k+"="+v)
		}
	}
	sort.Strings(props)
	parts = append(parts, props...)
	if c := t.snap.Metadata.Configuration[propComment]; c != "" {
		parts = append(parts, c)
	}
	return strings.Join(parts, "; ")
}

// WithProjections narrows the columns read from Parquet; names arrive lower-cased.
func (t *Table) WithProjections(cols []string) gms.Table {
	nt := *t
	nt.projected = cols
	nt.projSch = make(gms.Schema, 0, len(cols))
	for _, c := range cols {
		if i := t.schema.Schema.IndexOfColName(c); i >= 0 {
			nt.projSch = append(nt.projSch, t.schema.Schema[i])
		}
	}
	return &nt
}

func (t *Table) Projections() []string { return t.projected }

// RowCount is exact when every file has stats (Delta numRecords), which lets GMS answer
// COUNT(*) on keyed tables without a scan.
//
// Inside a transaction that changed the table the count includes its inserts; with deletes
// it is not exact (GMS then counts by scanning, which sees the transaction's view).
func (t *Table) RowCount(ctx *gms.Context) (uint64, bool, error) {
	n, exact := t.db.engine.snapshotRowCount(t.ct, t.snap)
	if w := t.writes(ctx); w != nil {
		if len(w.deletes) > 0 || w.truncated {
			exact = false
		}
		n += uint64(w.liveInserts())
	}
	return n, exact, nil
}

func (t *Table) DataLength(*gms.Context) (uint64, error) {
	var n uint64
	for _, f := range t.snap.Files {
		n += uint64(f.Size)
	}
	return n, nil
}

// partition is either the snapshot's files (pruned by an index lookup) or the rows this
// transaction inserted and has not committed yet.
//
// A lookup through the PRIMARY index is one partition holding both, sorted by key: GMS drops
// an ascending ORDER BY over an index lookup on the assumption that the index returns rows
// in key order.
type partition struct {
	pending bool
	sorted  bool
}

func (p partition) Key() []byte {
	switch {
	case p.pending:
		return []byte("pending")
	case p.sorted:
		return []byte("lookup")
	}
	return []byte("files")
}

func (t *Table) Partitions(ctx *gms.Context) (gms.PartitionIter, error) {
	if t.lookup != nil {
		return gms.PartitionsToPartitionIter(partition{sorted: true}), nil
	}
	parts := []gms.Partition{partition{}}
	if w := t.writes(ctx); w != nil && w.liveInserts() > 0 {
		parts = append(parts, partition{pending: true})
	}
	return gms.PartitionsToPartitionIter(parts...), nil
}

// writes returns the current transaction's changes to this table, if any.
func (t *Table) writes(ctx *gms.Context) *tableWrites {
	if t.asOf {
		return nil
	}
	if tx := transactionOf(ctx); tx != nil {
		if w, ok := tx.writes[t.ct]; ok && w.snap == t.snap {
			return w
		}
	}
	return nil
}

func (t *Table) PartitionRows(ctx *gms.Context, p gms.Partition) (gms.RowIter, error) {
	w := t.writes(ctx)
	if p.(partition).sorted {
		return t.lookupRows(ctx, w)
	}
	if p.(partition).pending {
		rows, err := w.visibleInserts()
		if err != nil {
			return nil, err
		}
		for i, r := range rows {
			rows[i] = t.project(r)
		}
		return gms.RowsToRowIter(rows...), nil
	}
	files := t.snap.Files
	if t.lookup != nil {
		files = table.PruneFiles(t.snap.Schema, t.snap.Metadata.PartitionColumns, files, lookupFilter(t.schema.Schema, t.lookup))
	}
	if t.prune != nil {
		files = table.PruneFiles(t.snap.Schema, t.snap.Metadata.PartitionColumns, files, t.prune)
	}
	t.db.engine.countScan(len(t.snap.Files), len(files))
	return t.scanRows(ctx, w, files, t.projected, t.prune)
}

// scanRows streams the rows of files, without the rows transaction w deleted. cols == nil
// reads whole rows; rows are projected to t.projected either way.
func (t *Table) scanRows(ctx *gms.Context, w *tableWrites, files []*txlog.Add, cols []string, filter *table.Filter) (*rowIter, error) {
	// Rows deleted by this transaction are filtered by key, so read whole rows then.
	full := cols == nil || (w != nil && (len(w.deletes) > 0 || w.truncated))
	if full {
		cols = nil
	}
	if w != nil && w.truncated {
		files = nil
	}
	// The filter also skips row groups whose statistics exclude it.
	sc, err := table.Scan(ctx, t.ct.Store, t.snap.Schema, t.snap.Metadata.PartitionColumns, files, table.ScanOptions{Columns: cols, Filter: filter})
	if err != nil {
		return nil, tableError(t.ct, err)
	}
	it := &rowIter{t: t, sc: sc, w: w, full: full, seen: map[string]int{}}
	it.readers, err = t.readers(sc.Schema(), cols)
	if err != nil {
		sc.Close()
		return nil, err
	}
	return it, nil
}

// readers picks a converter per column of the scanned schema.
func (t *Table) readers(as *arrow.Schema, cols []string) ([]valueReader, error) {
	sch := t.schema.Schema
	out := make([]valueReader, len(as.Fields()))
	for i, f := range as.Fields() {
		j := sch.IndexOfColName(f.Name)
		if j < 0 {
			return nil, fmt.Errorf("table %s: scan returned unknown column %q", t.Name(), f.Name)
		}
		out[i] = readerFor(f.Type, sch[j].Type)
	}
	return out, nil
}

func (t *Table) project(r gms.Row) gms.Row {
	if t.projected == nil {
		return r
	}
	out := make(gms.Row, 0, len(t.projected))
	for _, c := range t.projected {
		out = append(out, r[t.schema.Schema.IndexOfColName(c)])
	}
	return out
}

type rowIter struct {
	t       *Table
	sc      *table.Scanner
	w       *tableWrites
	full    bool           // rows are whole: checked against deletes, then projected
	raw     bool           // return whole rows unprojected
	seen    map[string]int // deleted keys skipped so far
	readers []valueReader
	rec     arrow.RecordBatch
	i       int
	// keep, if set, is checked on the raw batch before a row is converted: lookups use it
	// to skip the rows outside their key ranges cheaply.
	keep func(rec arrow.RecordBatch, i int) (bool, error)
}

func (it *rowIter) Next(ctx *gms.Context) (gms.Row, error) {
	for {
		if it.rec != nil && it.i < int(it.rec.NumRows()) {
			i := it.i
			it.i++
			if it.keep != nil {
				ok, err := it.keep(it.rec, i)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
			}
			row := make(gms.Row, len(it.readers))
			for c, rd := range it.readers {
				v, err := rd(it.rec.Column(c), i)
				if err != nil {
					return nil, fmt.Errorf("table %s column %q: %w", it.t.Name(), it.rec.ColumnName(c), err)
				}
				row[c] = v
			}
			if !it.full {
				return row, nil
			}
			if it.w != nil {
				k := it.w.key(row)
				if it.seen[k] < it.w.deletedBefore(k) {
					it.seen[k]++
					continue
				}
			}
			if it.raw {
				return row, nil
			}
			return it.t.project(row), nil
		}
		if it.rec != nil {
			it.rec.Release()
			it.rec = nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, _, err := it.sc.Next()
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if err != nil {
			return nil, tableError(it.t.ct, err)
		}
		it.rec, it.i = rec, 0
	}
}

func (it *rowIter) Close(*gms.Context) error {
	if it.rec != nil {
		it.rec.Release()
		it.rec = nil
	}
	return it.sc.Close()
}

// lookupRows serves an index lookup: the rows of the files the key ranges cannot exclude,
// plus this transaction's inserts, sorted by key (descending for a reverse lookup). The
// filter above still applies the exact predicate.
func (t *Table) lookupRows(ctx *gms.Context, w *tableWrites) (gms.RowIter, error) {
	if w == nil && t.points != nil {
		if iter, ok, err := t.points.lookup(ctx, t); ok || err != nil {
			return iter, err
		}
	}
	filter := lookupFilter(t.schema.Schema, t.lookup)
	files := table.PruneFiles(t.snap.Schema, t.snap.Metadata.PartitionColumns, t.snap.Files, filter)
	if w != nil && w.truncated {
		files = nil
	}
	t.db.engine.countScan(len(t.snap.Files), len(files))
	// Read the projected columns and the key (to sort by), not the whole file.
	var cols []string
	if t.projected != nil {
		cols = append([]string(nil), t.projected...)
		for _, k := range t.pkCols {
			cols = append(cols, strings.ToLower(k))
		}
	}
	it, err := t.scanRows(ctx, w, files, cols, filter)
	if err != nil {
		return nil, err
	}
	it.raw = true
	it.keep = t.keyRangeCheck(ctx, it.sc.Schema())
	// Rows of a partial scan are widened to the table's layout so sorting and projection
	// below work on schema ordinals either way.
	var widen []int
	if !it.full {
		for _, f := range it.sc.Schema().Fields() {
			widen = append(widen, t.schema.Schema.IndexOfColName(f.Name))
		}
	}
	var rows []gms.Row
	for {
		r, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			it.Close(ctx)
			return nil, err
		}
		if widen != nil {
			wide := make(gms.Row, len(t.schema.Schema))
			for i, o := range widen {
				wide[o] = r[i]
			}
			r = wide
		}
		rows = append(rows, r)
	}
	if err := it.Close(ctx); err != nil {
		return nil, err
	}
	if w != nil {
		pending, err := w.visibleInserts()
		if err != nil {
			return nil, err
		}
		rows = append(rows, pending...)
	}
	// Files are pruned, and rows checked, on the first key column only; the engine does not
	// filter a lookup join's rows again, so every row must be in the lookup's ranges.
	kept := rows[:0]
	for _, r := range rows {
		in, err := t.inLookup(ctx, r)
		if err != nil {
			return nil, err
		}
		if in {
			kept = append(kept, r)
		}
	}
	rows = kept
	sch := t.schema.Schema
	var sortErr error
	sort.SliceStable(rows, func(i, j int) bool {
		for _, o := range t.schema.PkOrdinals {
			c, err := sch[o].Type.Compare(ctx, rows[i][o], rows[j][o])
			if err != nil {
				sortErr = err
			}
			if c != 0 {
				return (c < 0) != t.lookup.IsReverse
			}
		}
		return false
	})
	if sortErr != nil {
		return nil, sortErr
	}
	for i, r := range rows {
		rows[i] = t.project(r)
	}
	return gms.RowsToRowIter(rows...), nil
}
