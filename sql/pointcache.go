package sql

import (
	"errors"
	"io"
	"sync"

	gms "github.com/dolthub/go-mysql-server/sql"
)

// pointCache serves the point lookups of one indexed access (a lookup join calls
// LookupPartitions once per outer row): the first one decodes the table's rows at the
// pinned snapshot into a map by key, and every later one is a map read. Without it each
// lookup pruned to a file and decoded it again: 10,000 lookups into a 10,000-row table took
// 77 s. Only tables of at most pointCacheRows rows are cached, and only for transactions
// that have not changed the table (whose rows the snapshot alone gives).
type pointCache struct {
	mu    sync.Mutex
	built bool
	rows  map[string]gms.Row // nil: not cacheable (too large)
}

const pointCacheRows = 1 << 20

// lookup answers the lookup of t if it is a point lookup on the whole key; ok is false when
// the caller must take the general path.
func (c *pointCache) lookup(ctx *gms.Context, t *Table) (gms.RowIter, bool, error) {
	key, ok, err := t.pointKey(ctx)
	if err != nil || !ok {
		return nil, false, err
	}
	rows, err := c.load(ctx, t)
	if err != nil || rows == nil {
		return nil, false, err
	}
	r, found := rows[key]
	if !found {
		return gms.RowsToRowIter(), true, nil
	}
	t.db.engine.countScan(len(t.snap.Files), 0)
	return gms.RowsToRowIter(t.project(r.Copy())), true, nil
}

func (c *pointCache) load(ctx *gms.Context, t *Table) (map[string]gms.Row, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.built {
		return c.rows, nil
	}
	c.built = true
	n, exact := t.db.engine.snapshotRowCount(t.ct, t.snap)
	if !exact || n > pointCacheRows {
		return nil, nil
	}
	// Whole rows (scanRows projects to the table's projection): the key is read from them
	// and each lookup projects its row itself.
	whole := *t
	whole.projected, whole.projSch, whole.lookup, whole.prune = nil, nil, nil, nil
	it, err := whole.scanRows(ctx, nil, t.snap.Files, nil, nil)
	if err != nil {
		return nil, err
	}
	defer it.Close(ctx)
	rows := make(map[string]gms.Row, n)
	pk := t.schema.PkOrdinals
	key := make(gms.Row, len(t.schema.Schema))
	for {
		r, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		// Keys go through the column type's Convert, as pointKey's do, so both sides
		// encode alike (a TIME is stored as text but converts to a Timespan).
		for _, o := range pk {
			v, _, err := t.schema.Schema[o].Type.Convert(ctx, r[o])
			if err != nil {
				return nil, err
			}
			key[o] = v
		}
		rows[rowKey(key, pk)] = r
	}
	c.rows = rows
	return rows, nil
}

// pointKey encodes the lookup's key when it is one point on every key column (col = v AND
// …), converting each value to its column's type as stored rows hold it.
func (t *Table) pointKey(ctx *gms.Context) (string, bool, error) {
	rc, ok := t.lookup.Ranges.(gms.MySQLRangeCollection)
	pk := t.schema.PkOrdinals
	if !ok || len(rc) != 1 || len(rc[0]) != len(pk) || len(pk) == 0 {
		return "", false, nil
	}
	row := make(gms.Row, len(t.schema.Schema))
	for i, ce := range rc[0] {
		lo, okLo := ce.LowerBound.(gms.Below)
		hi, okHi := ce.UpperBound.(gms.Above)
		if !okLo || !okHi || lo.Key == nil || hi.Key == nil {
			return "", false, nil
		}
		typ := t.schema.Schema[pk[i]].Type
		if c, err := typ.Compare(ctx, lo.Key, hi.Key); err != nil || c != 0 {
			return "", false, nil
		}
		v, _, err := typ.Convert(ctx, lo.Key)
		if err != nil {
			return "", false, nil
		}
		row[pk[i]] = v
	}
	return rowKey(row, pk), true, nil
}

// inLookup reports whether a whole row lies in one of the lookup's ranges, on every key
// column the ranges bound.
func (t *Table) inLookup(ctx *gms.Context, r gms.Row) (bool, error) {
	rc, ok := t.lookup.Ranges.(gms.MySQLRangeCollection)
	if !ok {
		return true, nil
	}
	pk := t.schema.PkOrdinals
	for _, rg := range rc {
		in := true
		for i, ce := range rg {
			if i >= len(pk) {
				break
			}
			typ := t.schema.Schema[pk[i]].Type
			v := r[pk[i]]
			lo, err := cutAllows(ctx, typ, v, ce.LowerBound, true)
			if err != nil {
				return false, err
			}
			hi, err := cutAllows(ctx, typ, v, ce.UpperBound, false)
			if err != nil {
				return false, err
			}
			if !lo || !hi {
				in = false
				break
			}
		}
		if in {
			return true, nil
		}
	}
	return false, nil
}
