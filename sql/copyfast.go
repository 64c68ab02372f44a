package sql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/expression"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/lakehoused/lakehoused/compaction"
	"github.com/lakehoused/lakehoused/connector"
	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// The Arrow fast path for INSERT INTO t SELECT … FROM read_parquet(…) (and read_csv,
// mysql_query, …, and CREATE TABLE … AS SELECT, which GMS runs as such an INSERT): when the
// SELECT only passes the source's columns through and each has the target column's type,
// the source's Arrow batches are staged in the statement as they are, like LOAD DATA's,
// instead of being turned into boxed rows and back. Anything else is left to GMS.

// sourceOf finds the source function under projections that only pass its columns through;
// perm[i] is the source column that feeds output column i.
func sourceOf(n gms.Node) (*sourceFunc, []int, bool) {
	var perm []int
	for {
		switch x := n.(type) {
		case *sourceFunc:
			if perm == nil {
				perm = make([]int, len(x.schema))
				for i := range perm {
					perm[i] = i
				}
			}
			return x, perm, true
		case *plan.TableAlias:
			n = x.Child
		case *plan.Project:
			p := make([]int, len(x.Projections))
			child := x.Child.Schema()
			for i, e := range x.Projections {
				if a, ok := e.(*expression.Alias); ok {
					e = a.Child
				}
				gf, ok := e.(*expression.GetField)
				if !ok || gf.Index() < 0 || gf.Index() >= len(child) {
					return nil, nil, false
				}
				p[i] = gf.Index()
			}
			if perm != nil {
				for i := range perm {
					perm[i] = p[perm[i]]
				}
			} else {
				perm = p
			}
			n = x.Child
		default:
			return nil, nil, false
		}
	}
}

// fixSourceNullability: GMS v0.20.0 gives the columns of a table function NOT NULL in the
// scope that CREATE TABLE … AS SELECT takes its column definitions from, so a NULL in the
// source would fail the copy. The columns the SELECT passes through from a source function
// get the source's nullability back before the table is created.
func fixSourceNullability(tc *plan.TableCopier) {
	ct, ok := tc.Destination.(*plan.CreateTable)
	if !ok {
		return
	}
	sf, perm, ok := sourceOf(tc.Source)
	if !ok {
		return
	}
	cols := ct.PkSchema().Schema
	out := tc.Source.Schema()
	if len(cols) != len(perm) || len(out) != len(perm) {
		return
	}
	for i, c := range cols {
		if !strings.EqualFold(c.Name, out[i].Name) {
			return
		}
	}
	for i, c := range cols {
		if !c.PrimaryKey {
			c.Nullable = sf.schema[perm[i]].Nullable
		}
	}
}

// stagedColumn says where a target column's values come from and what must be checked.
type stagedColumn struct {
	src     int    // source column
	name    string // target column, for errors
	notNull bool
	maxLen  int64 // declared character length to enforce; 0 = none
}

// stagingPlan decides whether batches with source fields srcSch can be staged as they are
// into t, with target column i fed by source column perm[i]. It fails (ok=false) when a type
// differs in a way that needs the engine's conversion.
func stagingPlan(t *Table, srcSch gms.Schema, srcArrow *arrow.Schema, perm []int) ([]stagedColumn, bool) {
	tsch := t.schema.Schema
	as, err := arrowSchemaOf(t)
	if err != nil || len(perm) != len(tsch) {
		return nil, false
	}
	cols := make([]stagedColumn, len(tsch))
	for i, c := range tsch {
		s := perm[i]
		if c.AutoIncrement || c.Generated != nil || s < 0 || s >= srcArrow.NumFields() {
			return nil, false
		}
		if !arrow.TypeEqual(as.Field(i).Type, srcArrow.Field(s).Type) {
			return nil, false
		}
		sc := stagedColumn{src: s, name: c.Name, notNull: !c.Nullable}
		st := srcSch[s].Type
		if !c.Type.Equals(st) {
			// The same Arrow type can hold values the target's MySQL type refuses (INT
			// UNSIGNED, MEDIUMINT, YEAR, DATETIME(0), ENUM, JSON). Only plain strings are
			// staged as they are, with the declared length checked here.
			if !types.IsText(c.Type) || types.IsEnum(c.Type) || types.IsSet(c.Type) || types.IsJSON(c.Type) || types.IsJSON(st) || !types.IsText(st) {
				return nil, false
			}
			if stt, ok := c.Type.(gms.StringType); ok {
				if n := stt.MaxCharacterLength(); n > 0 && n < types.LongTextBlobMax {
					sc.maxLen = n
				}
			}
		}
		cols[i] = sc
	}
	return cols, true
}

// stageSource reads src to the end and stages its rows as inserts of the current statement
// of w (begun by the caller). It returns the number of rows staged.
func (e *Engine) stageSource(ctx *gms.Context, t *Table, w *tableWrites, src connector.Source, cols []stagedColumn, job *compaction.Job) (int64, error) {
	var keyReaders []valueReader
	var keyCols []int
	if len(w.pk) > 0 {
		for _, o := range w.pk {
			keyCols = append(keyCols, cols[o].src)
			keyReaders = append(keyReaders, readerFor(src.Schema().Field(cols[o].src).Type, t.schema.Schema[o].Type))
		}
	}
	ed := &editor{t: t, w: w}
	var sp *spiller
	if len(w.pk) == 0 && autocommitStatement(ctx) {
		sp = &spiller{}
		// Every return waits for the file being written, so that its adds are the
		// statement's (to commit, or for discard to delete).
		defer sp.finish(w)
	}
	var total int64
	var keyBuf []byte
	for {
		rec, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return total, err
		}
		reportProgress(job, src.Progress())
		n := rec.NumRows()
		arrs := make([]arrow.Array, len(cols))
		for i, c := range cols {
			a := rec.Column(c.src)
			if c.notNull && a.NullN() > 0 {
				rec.Release()
				return total, mysql.NewSQLError(mysql.ERBadNullError, "23000", "Column '%s' cannot be null (row %d of the source)", c.name, total+int64(firstNull(a))+1)
			}
			if c.maxLen > 0 {
				if r, ok := tooLong(a, c.maxLen); !ok {
					rec.Release()
					return total, mysql.NewSQLError(mysql.ERDataTooLong, "22001", "Data too long for column '%s' at row %d", c.name, total+int64(r)+1)
				}
			}
			arrs[i] = a
		}
		for r := 0; r < int(n) && keyReaders != nil; r++ {
			keyBuf = keyBuf[:0]
			vals := make(gms.Row, len(keyReaders))
			for j, rd := range keyReaders {
				v, err := rd(rec.Column(keyCols[j]), r)
				if err != nil {
					rec.Release()
					return total, err
				}
				vals[j] = v
				keyBuf = appendKeyValue(keyBuf, v)
			}
			k := string(keyBuf)
			dup := w.stmt.insertKeys[k] > 0
			if !dup {
				_, found, err := ed.existing(ctx, k)
				if err != nil {
					rec.Release()
					return total, err
				}
				dup = found
			}
			if dup {
				rec.Release()
				return total, mysql.NewSQLError(mysql.ERDupEntry, "23000", "Duplicate entry '%s' for key '%s.PRIMARY' (row %d of the source)", keyText(vals, seq(len(vals))), t.Name(), total+int64(r)+1)
			}
			w.stmt.insertKeys[k]++
			w.stmt.keys = append(w.stmt.keys, k)
		}
		out := array.NewRecordBatch(w.as, arrs, n)
		rec.Release()
		if err := w.stmt.ins.appendBatch(out); err != nil {
			return total, err
		}
		total += n
		job.RowsDone.Store(total)
		if sp != nil && w.stmt.ins.len() >= e.cfg.CopySpillRows {
			if err := sp.spill(ctx, w); err != nil {
				return total, err
			}
		}
	}
	if sp != nil {
		if err := sp.wait(w); err != nil {
			return total, err
		}
	}
	if total > 0 {
		w.stmt.ops["insert"] = true
	}
	return total, nil
}

// defaultSpillRows is how many staged rows of a copy are written out as data files during the
// statement: memory stays bounded (a 10M-row copy held ~1 GB of Arrow batches until its
// commit) and the encoding of a part overlaps nothing but no longer waits for the end.
const defaultSpillRows = 2 << 20

// autocommitStatement reports whether the statement's transaction commits when it ends.
// Only such statements spill: rows already in files are invisible to the transaction's own
// later reads and deletes, which an autocommit statement does not have.
func autocommitStatement(ctx *gms.Context) bool {
	if ctx.GetIgnoreAutoCommit() {
		return false
	}
	v, err := ctx.GetSessionVariable(ctx, "autocommit")
	if err != nil {
		return false
	}
	switch x := v.(type) {
	case bool:
		return x
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		return toInt64(x) != 0
	}
	return false
}

// spiller writes a copy's staged rows out as data files in the background while the source
// goes on being read (decoding and encoding overlap on two cores); at most one write is in
// flight, so at most two spills' rows are in memory.
type spiller struct {
	busy bool
	done chan struct{}
	adds []*txlog.Add
	rows int64
	err  error
}

// spill hands the statement's staged rows (a keyless table's) to a background write, laid
// out for the pinned snapshot, after the previous write has finished.
func (sp *spiller) spill(ctx *gms.Context, w *tableWrites) error {
	if err := sp.wait(w); err != nil {
		return err
	}
	s := w.stmt
	full := s.ins
	batches, release, err := full.batches(func(int) bool { return false })
	if err != nil {
		return err
	}
	s.ins = newRowBuffer(w.sch, w.as)
	sp.busy, sp.done, sp.rows = true, make(chan struct{}), int64(full.len())
	go func() {
		defer close(sp.done)
		sp.adds, sp.err = table.WriteBatches(context.WithoutCancel(ctx), w.table.Store, w.snap.Schema, w.snap.Metadata.PartitionColumns, writerOptions(w.snap), batches)
		for _, r := range release {
			r()
		}
		full.release()
	}()
	return nil
}

// wait finishes the write in flight and records its files in the statement.
func (sp *spiller) wait(w *tableWrites) error {
	if !sp.busy {
		return nil
	}
	<-sp.done
	sp.busy = false
	if sp.err != nil {
		return fmt.Errorf("table %s.%s: write: %w", w.table.Entry.Database, w.table.Entry.Name, sp.err)
	}
	w.stmt.spilled = append(w.stmt.spilled, sp.adds...)
	w.stmt.spilledRows += sp.rows
	return nil
}

// finish waits on a statement's error paths, so that the files of a write in flight are
// the statement's for discard to delete; the success path waits itself and checks.
func (sp *spiller) finish(w *tableWrites) {
	if w.stmt != nil {
		_ = sp.wait(w)
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func firstNull(a arrow.Array) int {
	for i := 0; i < a.Len(); i++ {
		if a.IsNull(i) {
			return i
		}
	}
	return 0
}

// tooLong checks a string column against a declared character length; it returns the first
// offending row.
func tooLong(a arrow.Array, n int64) (int, bool) {
	s, ok := a.(*array.String)
	if !ok {
		return 0, true
	}
	for i := 0; i < s.Len(); i++ {
		if s.IsNull(i) {
			continue
		}
		v := s.Value(i)
		if int64(len(v)) > n && int64(utf8.RuneCountInString(v)) > n {
			return i, false
		}
	}
	return 0, true
}

// copyIter runs a fast-path INSERT … SELECT on its first Next and returns the OK result.
type copyIter struct {
	e    *Engine
	t    *Table
	sf   *sourceFunc
	cols []stagedColumn
	done bool
}

func (c *copyIter) Close(*gms.Context) error { return nil }

func (c *copyIter) Next(ctx *gms.Context) (gms.Row, error) { return okOnce(ctx, &c.done, c.run) }

func (c *copyIter) run(ctx *gms.Context) (int64, error) {
	w, err := c.t.stagedWrites(ctx)
	if err != nil {
		return 0, err
	}
	src, err := c.sf.Source(ctx)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	job := c.e.jobs.Start("insert from "+c.sf.name, c.t.db.name+"."+c.t.Name(), ctx.Session.ID())
	w.begin()
	completed := false
	defer func() {
		if !completed { // an error or a panic: the statement changes nothing
			w.discard()
		}
	}()
	n, err := c.e.stageSource(ctx, c.t, w, src, c.cols, job)
	if err == nil {
		err = w.complete()
	}
	job.End(err)
	if err != nil {
		return 0, err
	}
	completed = true
	c.e.fastCopies.Add(1)
	return n, nil
}

// prepareCopy decides whether an INSERT … SELECT can take the fast path.
func (e *Engine) prepareCopy(ii *plan.InsertInto) (*copyIter, bool) {
	// (FirstGeneratedAutoIncRowIdx is not looked at: CREATE TABLE … AS SELECT builds its
	// INSERT without the analyzer, leaving it 0; stagingPlan refuses AUTO_INCREMENT columns.)
	if ii.IsReplace || ii.Ignore || len(ii.OnDupExprs) > 0 || ii.Returning != nil || len(ii.Checks()) > 0 {
		return nil, false
	}
	sf, perm, ok := sourceOf(ii.Source)
	if !ok {
		return nil, false
	}
	ins, err := plan.GetInsertable(ii.Destination)
	if err != nil {
		return nil, false
	}
	t, ok := gms.GetUnderlyingTable(ins).(*Table)
	if !ok || t.asOf {
		return nil, false
	}
	// An explicit column list must name every column in table order.
	if len(ii.ColumnNames) > 0 {
		if len(ii.ColumnNames) != len(t.schema.Schema) {
			return nil, false
		}
		for i, c := range t.schema.Schema {
			if !strings.EqualFold(ii.ColumnNames[i], c.Name) {
				return nil, false
			}
		}
	}
	srcArrow, err := connector.ArrowSchemaOf(sf.fields)
	if err != nil {
		return nil, false
	}
	cols, ok := stagingPlan(t, sf.schema, srcArrow, perm)
	if !ok {
		return nil, false
	}
	return &copyIter{e: e, t: t, sf: sf, cols: cols}, true
}
