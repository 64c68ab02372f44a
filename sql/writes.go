package sql

import (
	"context"
	"encoding/binary"
	"fmt"
	"github.com/apache/arrow-go/v18/arrow"
	"math"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/shopspring/decimal"

	"github.com/lakehoused/lakehoused/catalog"
	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// tableWrites is what one transaction has changed in one table, relative to the snapshot it
// pinned. Rows are identified by their primary key, or by all their values when the table has
// no key (then identical rows are interchangeable and are counted).
//
// Each statement stages its changes in stmt and merges them at StatementComplete, so a failed
// statement (DiscardChanges) changes nothing — GMS does not roll back a failed autocommit
// statement's transaction itself.
type tableWrites struct {
	table *catalog.Table
	snap  *txlog.Snapshot
	pk    []int // key ordinals in the full schema; nil = keyless
	sch   gms.Schema
	as    *arrow.Schema

	ins  *rowBuffer // rows inserted by committed statements of this transaction
	dead []bool     // ins row i was deleted again later in the transaction
	// insertIdx maps a row key to its positions in ins. Keyed tables keep it up to date
	// (uniqueness checks need it); keyless tables build it only when a statement deletes
	// a row the transaction inserted, because full-row keys of a bulk load cost more memory
	// than the rows.
	insertIdx map[string][]int
	indexed   bool
	// lazyKeys are the keys of rows bulk-loaded into a keyed table, not yet in insertIdx:
	// an autocommit LOAD DATA never looks them up one by one, and indexing millions of keys
	// costs about a third of the statement.
	lazyKeys  []keyRun
	deletes   map[string]int  // row key → number of snapshot rows deleted
	delRows   []gms.Row       // the snapshot rows deleted, to find the files holding them
	truncated bool            // all snapshot rows are deleted
	ops       map[string]bool // insert, delete, update, truncate
	// props are table properties set in the same commit as the rows (lake_copy's
	// high-water marks), so a copy and its mark land together or not at all.
	props map[string]string
	// spilled are data files a large copy already wrote (see spillStaged): stored, not yet
	// committed; the commit adds them, a failure or rollback deletes them.
	spilled     []*txlog.Add
	spilledRows int64

	stmt *stmtWrites
}

// keyRun is the keys of the inserted rows base, base+1, ….
type keyRun struct {
	base int
	keys []string
}

type stmtWrites struct {
	ins        *rowBuffer
	keys       []string       // keyed tables: the key of each staged row
	insertKeys map[string]int // keyed tables: live staged rows per key
	deadStaged map[int]bool   // staged rows deleted again by the same statement (REPLACE)
	kills      []int          // positions in tableWrites.ins this statement deleted
	killed     map[int]bool
	deletes    map[string]int
	delRows    []gms.Row
	truncated  bool
	ops        map[string]bool

	spilled     []*txlog.Add
	spilledRows int64
}

func newTableWrites(ct *catalog.Table, snap *txlog.Snapshot, pk []int, sch gms.Schema, as *arrow.Schema) *tableWrites {
	return &tableWrites{
		table: ct, snap: snap, pk: pk, sch: sch, as: as, ins: newRowBuffer(sch, as),
		insertIdx: map[string][]int{}, indexed: len(pk) > 0, deletes: map[string]int{}, ops: map[string]bool{},
	}
}

func (w *tableWrites) empty() bool {
	return w.liveInserts() == 0 && len(w.deletes) == 0 && !w.truncated && len(w.spilled) == 0
}

func (w *tableWrites) liveInserts() int {
	n := 0
	for _, d := range w.dead {
		if !d {
			n++
		}
	}
	return n
}

func (w *tableWrites) begin() {
	if w.stmt == nil {
		w.stmt = &stmtWrites{ins: newRowBuffer(w.sch, w.as), insertKeys: map[string]int{}, deadStaged: map[int]bool{},
			killed: map[int]bool{}, deletes: map[string]int{}, ops: map[string]bool{}}
	}
}

func (w *tableWrites) discard() {
	if w.stmt != nil {
		w.stmt.ins.release()
		deleteFiles(w.table.Store, w.stmt.spilled)
	}
	w.stmt = nil
}

// complete merges the statement's changes into the transaction.
func (w *tableWrites) complete() (err error) {
	s := w.stmt
	if s == nil {
		return nil
	}
	w.stmt = nil
	// The statement's own spilled files join the transaction only if the merge succeeds;
	// otherwise they go (discard can no longer reach them: w.stmt is already cleared).
	defer func() {
		if err != nil {
			deleteFiles(w.table.Store, s.spilled)
			return
		}
		if s.truncated && len(w.spilled) > 0 {
			// Files earlier statements spilled hold rows this statement removed.
			deleteFiles(w.table.Store, w.spilled)
			w.spilled, w.spilledRows = nil, 0
		}
		w.spilled = append(w.spilled, s.spilled...)
		w.spilledRows += s.spilledRows
	}()
	if s.truncated {
		w.truncated = true
		w.deletes = map[string]int{}
		w.delRows = nil
		for i := range w.dead {
			w.dead[i] = true
		}
	}
	for _, i := range s.kills {
		w.dead[i] = true
	}
	for k, n := range s.deletes {
		w.deletes[k] += n
	}
	w.delRows = append(w.delRows, s.delRows...)
	base := w.ins.len()
	if len(s.deadStaged) == 0 {
		keys := s.keys
		if w.indexed && len(w.pk) == 0 {
			err := s.ins.each(func(_ int, r gms.Row) error {
				keys = append(keys, w.key(r))
				return nil
			})
			if err != nil {
				return err
			}
		}
		n := s.ins.len()
		if err := w.ins.appendAll(s.ins); err != nil {
			return err
		}
		w.dead = append(w.dead, make([]bool, n)...)
		for j, k := range keys {
			w.insertIdx[k] = append(w.insertIdx[k], base+j)
		}
	} else {
		err := s.ins.each(func(i int, r gms.Row) error {
			if s.deadStaged[i] {
				return nil
			}
			pos := w.ins.len()
			if err := w.ins.append(r); err != nil {
				return err
			}
			w.dead = append(w.dead, false)
			if w.indexed {
				k := w.key(r)
				w.insertIdx[k] = append(w.insertIdx[k], pos)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for op := range s.ops {
		w.ops[op] = true
	}
	return nil
}

// writeInserts writes the live inserted rows of ws (in order) as data files laid out for
// snap, encoding large writes on every core, and returns their add actions. On error
// nothing is left behind.
func writeInserts(ctx context.Context, store storage.Store, snap *txlog.Snapshot, ws ...*tableWrites) ([]*txlog.Add, error) {
	s, err := sealInserts(ctx, store, snap, ws...)
	if err != nil {
		return nil, err
	}
	return s.Store(ctx)
}

// sealInserts is writeInserts with the last files encoded but not yet stored (see
// table.SealBatches).
func sealInserts(ctx context.Context, store storage.Store, snap *txlog.Snapshot, ws ...*tableWrites) (*table.Sealed, error) {
	var batches []arrow.RecordBatch
	var release []func()
	defer func() {
		for _, r := range release {
			r()
		}
	}()
	for _, w := range ws {
		bs, rel, err := w.ins.batches(func(i int) bool { return w.dead[i] })
		release = append(release, rel...)
		if err != nil {
			return nil, err
		}
		batches = append(batches, bs...)
	}
	return table.SealBatches(ctx, store, snap.Schema, snap.Metadata.PartitionColumns, writerOptions(snap), batches)
}

// eachLiveKey calls fn with every key that has a live inserted row and that row's position,
// until fn returns false.
func (w *tableWrites) eachLiveKey(fn func(k string, pos int) bool) {
	if w.onlyLazyKeys() {
		w.eachLiveKeyInOrder(fn)
		return
	}
	_ = w.ensureIndex()
	for k, positions := range w.insertIdx {
		for _, i := range positions {
			if !w.dead[i] {
				if !fn(k, i) {
					return
				}
				break
			}
		}
	}
}

// eachLiveKeyInOrder is eachLiveKey in row order (the order in which writeInserts writes
// the rows).
func (w *tableWrites) eachLiveKeyInOrder(fn func(k string, pos int) bool) {
	if w.onlyLazyKeys() {
		for _, run := range w.lazyKeys {
			for j, k := range run.keys {
				if !w.dead[run.base+j] && !fn(k, run.base+j) {
					return
				}
			}
		}
		return
	}
	_ = w.ensureIndex()
	keys := make([]string, w.ins.len())
	for k, positions := range w.insertIdx {
		for _, p := range positions {
			keys[p] = k
		}
	}
	for p, k := range keys {
		if !w.dead[p] && !fn(k, p) {
			return
		}
	}
}

// onlyLazyKeys reports whether every inserted row's key is in lazyKeys (bulk-loaded rows of
// a keyed table, whose live keys are distinct), so no index is needed to visit them.
func (w *tableWrites) onlyLazyKeys() bool { return len(w.insertIdx) == 0 && len(w.pk) > 0 }

// ensureIndex makes insertIdx cover every inserted row: it folds in bulk-loaded keys, and
// builds the index of a keyless table on first need.
func (w *tableWrites) ensureIndex() error {
	for _, run := range w.lazyKeys {
		if len(w.insertIdx) == 0 {
			w.insertIdx = indexKeys(run.base, run.keys)
			continue
		}
		for j, k := range run.keys {
			w.insertIdx[k] = append(w.insertIdx[k], run.base+j)
		}
	}
	w.lazyKeys = nil
	if w.indexed {
		return nil
	}
	err := w.ins.each(func(i int, r gms.Row) error {
		k := w.key(r)
		w.insertIdx[k] = append(w.insertIdx[k], i)
		return nil
	})
	w.indexed = err == nil
	return err
}

// key encodes the identity of a row: its primary key, or all of its values.
func (w *tableWrites) key(r gms.Row) string {
	return rowKey(r, w.pk)
}

func rowKey(r gms.Row, ords []int) string {
	var b []byte
	if ords == nil {
		for _, v := range r {
			b = appendKeyValue(b, v)
		}
		return string(b)
	}
	for _, o := range ords {
		b = appendKeyValue(b, r[o])
	}
	return string(b)
}

// appendKeyValue writes a self-delimiting encoding of one value. Integers of every width
// encode alike so a key read back from Parquet (int64) matches one from a client (int32).
func appendKeyValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, 0)
	case int8, int16, int32, int64, uint8, uint16, uint32:
		b = append(b, 1)
		return binary.BigEndian.AppendUint64(b, uint64(toInt64(x)))
	case uint64:
		b = append(b, 2)
		return binary.BigEndian.AppendUint64(b, x)
	case float32:
		b = append(b, 3)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(float64(x)))
	case float64:
		b = append(b, 3)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(x))
	case string:
		b = append(b, 4)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...)
	case []byte:
		b = append(b, 5)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...)
	case time.Time:
		b = append(b, 6)
		return binary.BigEndian.AppendUint64(b, uint64(x.UnixMicro()))
	case decimal.Decimal:
		s := x.String()
		b = append(b, 7)
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	s := fmt.Sprint(v)
	b = append(b, 8)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// livePendingInsert finds a row of this transaction with key k that is still alive.
func (w *tableWrites) livePendingInsert(k string) (int, bool, error) {
	if w.stmt != nil && w.stmt.truncated {
		return -1, false, nil
	}
	if err := w.ensureIndex(); err != nil {
		return -1, false, err
	}
	for _, i := range w.insertIdx[k] {
		if !w.dead[i] && (w.stmt == nil || !w.stmt.killed[i]) {
			return i, true, nil
		}
	}
	return -1, false, nil
}

// deletedBefore reports how many snapshot rows with key k earlier statements deleted. Scans
// use it: a statement reads the table as it was when the statement began, not its own
// staged changes (DELETE of duplicate rows would otherwise hide the second copy from itself).
func (w *tableWrites) deletedBefore(k string) int {
	if w.truncated {
		return math.MaxInt
	}
	return w.deletes[k]
}

// deletedFromSnapshot reports how many snapshot rows with key k are deleted so far,
// including by the current statement; key checks use it.
func (w *tableWrites) deletedFromSnapshot(k string) int {
	if w.truncated || (w.stmt != nil && w.stmt.truncated) {
		return math.MaxInt
	}
	n := w.deletes[k]
	if w.stmt != nil {
		n += w.stmt.deletes[k]
	}
	return n
}

// visibleInserts is what a scan inside this transaction sees besides the snapshot's files.
func (w *tableWrites) visibleInserts() ([]gms.Row, error) {
	var out []gms.Row
	if w.liveInserts() == 0 {
		return nil, nil
	}
	err := w.ins.each(func(i int, r gms.Row) error {
		if !w.dead[i] {
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// operation names the commit the way Spark does in commitInfo.
func (w *tableWrites) operation() string {
	switch {
	case w.ops["truncate"] && len(w.ops) == 1:
		return "TRUNCATE"
	case w.ops["update"] || (w.ops["insert"] && w.ops["delete"]):
		if w.ops["insert"] && !w.ops["update"] {
			return "MERGE"
		}
		return "UPDATE"
	case w.ops["delete"] || w.ops["truncate"]:
		return "DELETE"
	}
	return "WRITE"
}

func (w *tableWrites) String() string {
	return fmt.Sprintf("%s.%s: %d inserts, %d deletes", w.table.Entry.Database, w.table.Entry.Name, w.liveInserts(), len(w.deletes))
}
