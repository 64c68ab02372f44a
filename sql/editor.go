package sql

import (
	"fmt"
	"strings"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/shopspring/decimal"
)

// editor serves INSERT, UPDATE, DELETE and REPLACE. It only stages changes in the
// transaction; files are written at commit, so a statement costs no I/O per row.
type editor struct {
	t   *Table
	w   *tableWrites
	err error // deferred setup error
}

func (t *Table) editor(ctx *gms.Context) (*editor, error) {
	w, err := t.stagedWrites(ctx)
	if err != nil {
		return nil, err
	}
	return &editor{t: t, w: w}, nil
}

// stagedWrites is this transaction's writes to t, for a statement about to change it.
func (t *Table) stagedWrites(ctx *gms.Context) (*tableWrites, error) {
	if t.asOf {
		return nil, mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState, "table %s is read at an older version (AS OF) and cannot be changed", t.Name())
	}
	tx := transactionOf(ctx)
	if tx == nil {
		return nil, fmt.Errorf("table %s: no transaction for a write", t.Name())
	}
	if tx.readOnly {
		return nil, gms.ErrReadOnlyTransaction.New()
	}
	return tx.writesFor(t)
}

func (t *Table) Inserter(ctx *gms.Context) gms.RowInserter { return t.mustEditor(ctx) }
func (t *Table) Updater(ctx *gms.Context) gms.RowUpdater   { return t.mustEditor(ctx) }
func (t *Table) Deleter(ctx *gms.Context) gms.RowDeleter   { return t.mustEditor(ctx) }
func (t *Table) Replacer(ctx *gms.Context) gms.RowReplacer { return t.mustEditor(ctx) }

// mustEditor defers a setup error to the first edit call, since GMS's editor constructors
// cannot fail.
func (t *Table) mustEditor(ctx *gms.Context) *editor {
	e, err := t.editor(ctx)
	if err != nil {
		return &editor{t: t, w: nil, err: err}
	}
	return e
}

func (e *editor) StatementBegin(*gms.Context) {
	if e.w != nil {
		e.w.begin()
	}
}

func (e *editor) DiscardChanges(*gms.Context, error) error {
	if e.w != nil {
		e.w.discard()
	}
	return nil
}

func (e *editor) StatementComplete(*gms.Context) error {
	if e.w != nil {
		return e.w.complete()
	}
	return nil
}

func (e *editor) Close(*gms.Context) error { return nil }

func (e *editor) Insert(ctx *gms.Context, row gms.Row) error {
	if e.err != nil {
		return e.err
	}
	w := e.w
	w.begin()
	if err := e.checkRow(row); err != nil {
		return err
	}
	if w.pk != nil {
		k := w.key(row)
		if existing, dup, err := e.existing(ctx, k); err != nil {
			return err
		} else if dup {
			return gms.NewUniqueKeyErr(e.keyString(row), true, existing)
		}
		w.stmt.insertKeys[k]++
		w.stmt.keys = append(w.stmt.keys, k)
	}
	if err := w.stmt.ins.append(row.Copy()); err != nil {
		return err
	}
	w.stmt.ops["insert"] = true
	return nil
}

// stagedPos finds a live row with key k staged by the current statement (keyed tables).
func (w *tableWrites) stagedPos(k string) (int, bool) {
	if w.stmt.insertKeys[k] == 0 {
		return -1, false
	}
	for i, sk := range w.stmt.keys {
		if sk == k && !w.stmt.deadStaged[i] {
			return i, true
		}
	}
	return -1, false
}

// existing finds a live row with key k as this statement sees it: staged by this statement,
// inserted earlier in the transaction, or in the snapshot and not deleted since.
func (e *editor) existing(ctx *gms.Context, k string) (gms.Row, bool, error) {
	w := e.w
	if i, ok := w.stagedPos(k); ok {
		r, err := w.stmt.ins.row(i)
		return r, err == nil, err
	}
	if i, ok, err := w.livePendingInsert(k); err != nil {
		return nil, false, err
	} else if ok {
		r, err := w.ins.row(i)
		return r, err == nil, err
	}
	if w.deletedFromSnapshot(k) > 0 {
		return nil, false, nil
	}
	return e.t.db.engine.lookupKey(ctx, e.t, k)
}

func (e *editor) keyString(row gms.Row) string {
	parts := make([]string, len(e.w.pk))
	for i, o := range e.w.pk {
		parts[i] = fmt.Sprint(row[o])
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// checkRow enforces what the Delta schema alone cannot: declared string lengths.
func (e *editor) checkRow(row gms.Row) error {
	for i, c := range e.t.schema.Schema {
		if row[i] == nil {
			if !c.Nullable {
				return gms.ErrInsertIntoNonNullableProvidedNull.New(c.Name)
			}
			continue
		}
		if st, ok := c.Type.(gms.StringType); ok {
			if s, ok := row[i].(string); ok && st.MaxCharacterLength() > 0 && int64(len([]rune(s))) > st.MaxCharacterLength() {
				return mysql.NewSQLError(mysql.ERDataTooLong, "22001", "Data too long for column '%s' (%d characters, at most %d)", c.Name, len([]rune(s)), st.MaxCharacterLength())
			}
		}
	}
	return nil
}

func (e *editor) Delete(ctx *gms.Context, row gms.Row) error {
	if e.err != nil {
		return e.err
	}
	w := e.w
	w.begin()
	k := w.key(row)
	w.stmt.ops["delete"] = true
	if i, ok := w.stagedPos(k); ok {
		w.stmt.deadStaged[i] = true
		w.stmt.insertKeys[k]--
		return nil
	}
	if i, ok, err := w.livePendingInsert(k); err != nil {
		return err
	} else if ok {
		w.stmt.kills = append(w.stmt.kills, i)
		w.stmt.killed[i] = true
		return nil
	}
	w.stmt.deletes[k]++
	w.stmt.delRows = append(w.stmt.delRows, row.Copy())
	return nil
}

func (e *editor) Update(ctx *gms.Context, old, new gms.Row) error {
	// A row that does not change is not rewritten (MySQL counts it as matched, not changed).
	if same, err := old.Equals(ctx, new, e.t.schema.Schema); err == nil && same {
		return nil
	}
	if err := e.Delete(ctx, old); err != nil {
		return err
	}
	if err := e.Insert(ctx, new); err != nil {
		return err
	}
	e.w.stmt.ops["update"] = true
	delete(e.w.stmt.ops, "insert")
	delete(e.w.stmt.ops, "delete")
	return nil
}

// Truncate deletes every row; like MySQL's TRUNCATE it is its own statement.
func (t *Table) Truncate(ctx *gms.Context) (int, error) {
	e, err := t.editor(ctx)
	if err != nil {
		return 0, err
	}
	n, _, _ := t.RowCount(ctx)
	e.w.begin()
	e.w.stmt.truncated = true
	e.w.stmt.ops["truncate"] = true
	return int(n), e.w.complete()
}

// filterValue converts an index key to the value types table.Filter compares.
func filterValue(v any) any {
	switch x := v.(type) {
	case int8, int16, int32, int64, uint8, uint16, uint32:
		return toInt64(x)
	case uint64:
		if x > 1<<63-1 {
			return nil
		}
		return int64(x)
	case float32:
		return float64(x)
	case float64:
		return x
	case string:
		return x
	case []byte:
		return x
	case time.Time:
		return x
	case decimal.Decimal:
		return x.String() // exact: table/ compares decimal text as a rational
	case bool:
		return x
	}
	return nil
}
