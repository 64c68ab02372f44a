package sql

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/expression"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/transform"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/lakehoused/lakehoused/table"
)

// LOAD DATA fast path. GMS runs LOAD DATA as INSERT … SELECT over a row iterator: every field
// becomes a boxed string, is converted by the column type (trying layout after layout for
// dates), checked, and handed to the editor one row at a time. For a simple LOAD DATA into a
// lakehoused table this builder instead parses the input (one goroutine) and converts each field
// straight into the Arrow builder of its column (another goroutine), checks keys batch by
// batch, and stages ready Arrow batches in the statement, exactly where the editor would have
// put the rows. Anything it does not handle is left to GMS (Build returns nil, nil).

// loadBuilder is installed as the analyzer's exec-builder override.
type loadBuilder struct{ e *Engine }

func (lb loadBuilder) Build(ctx *gms.Context, n gms.Node, row gms.Row) (gms.RowIter, error) {
	if f, ok := n.(*plan.Filter); ok {
		if iter, ok, err := lb.buildPruned(ctx, f, row); ok {
			return iter, err
		}
		return nil, nil
	}
	if tc, ok := n.(*plan.TableCopier); ok {
		fixSourceNullability(tc)
		return nil, nil
	}
	ii, ok := n.(*plan.InsertInto)
	if !ok {
		return nil, nil
	}
	if c, ok := lb.e.prepareCopy(ii); ok {
		return c, nil
	}
	ld, ok := loadDataSource(ii.Source)
	if !ok {
		return nil, nil
	}
	l, ok := lb.e.prepareLoad(ctx, ii, ld)
	if !ok {
		return nil, nil
	}
	lb.e.fastLoads.Add(1)
	return l, nil
}

// loadDataSource finds the LoadData under the projection the analyzer puts over it, when that
// projection only passes fields through or fills in column defaults (what the fast path does).
func loadDataSource(n gms.Node) (*plan.LoadData, bool) {
	for {
		switch x := n.(type) {
		case *plan.LoadData:
			return x, true
		case *plan.Project:
			for _, p := range x.Projections {
				switch p.(type) {
				case *expression.GetField, *gms.ColumnDefaultValue, *expression.Literal:
				default:
					return nil, false
				}
			}
			n = x.Child
		default:
			return nil, false
		}
	}
}

// prepareLoad decides whether the fast path can run the statement and sets it up.
func (e *Engine) prepareLoad(ctx *gms.Context, ii *plan.InsertInto, ld *plan.LoadData) (*loadIter, bool) {
	if ld.IsReplace || ii.IsReplace || len(ii.OnDupExprs) > 0 || ii.Returning != nil || len(ii.Checks()) > 0 ||
		ii.FirstGeneratedAutoIncRowIdx >= 0 {
		return nil, false
	}
	for _, s := range ld.SetExprs {
		if s != nil {
			return nil, false
		}
	}
	for _, u := range ld.UserVars {
		if u != nil {
			return nil, false
		}
	}
	if len(ld.FieldsTerminatedBy) == 0 || len(ld.LinesTerminatedBy) == 0 || len(ld.FieldsEnclosedBy) > 1 || len(ld.FieldsEscapedBy) > 1 {
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
	sch := t.schema.Schema
	as, err := arrowSchemaOf(t)
	if err != nil {
		return nil, false
	}
	l := &loadIter{e: e, t: t, ld: ld, as: as, ignore: ld.IsIgnore}
	l.cols = make([]*colLoad, len(sch))
	for i, c := range sch {
		cl, ok := newColLoad(ctx, i, c, as.Field(i).Type)
		if !ok {
			return nil, false
		}
		// Defaults as the statement resolved them.
		if j := ld.DestSch.IndexOfColName(c.Name); j >= 0 && ld.DestSch[j].Default != nil {
			d := ld.DestSch[j].Default
			if !constantPerStatement(d) || c.AutoIncrement || c.Generated != nil {
				return nil, false
			}
			v, err := d.Eval(ctx, nil)
			if err != nil {
				return nil, false
			}
			cl.def, cl.hasDef = v, true
		} else if c.AutoIncrement || c.Generated != nil {
			return nil, false
		}
		l.cols[i] = cl
	}
	names := ld.ColNames
	if len(names) == 0 {
		names = make([]string, len(sch))
		for i, c := range sch {
			names[i] = c.Name
		}
	}
	for _, name := range names {
		i := sch.IndexOfColName(name)
		if i < 0 {
			return nil, false
		}
		l.fieldCol = append(l.fieldCol, i)
	}
	if len(t.pkCols) > 0 {
		l.pk = t.schema.PkOrdinals
		for _, o := range l.pk {
			if l.cols[o].key == nil {
				return nil, false
			}
		}
	}
	l.opt = csvOptions{fieldTerm: []byte(ld.FieldsTerminatedBy), lineStart: []byte(ld.LinesStartingBy),
		lineTerm: []byte(ld.LinesTerminatedBy), ignoreRows: ld.IgnoreNum}
	if ld.FieldsEnclosedBy != "" {
		l.opt.encl, l.opt.hasEncl = ld.FieldsEnclosedBy[0], true
	}
	if ld.FieldsEscapedBy != "" {
		l.opt.esc, l.opt.hasEsc = ld.FieldsEscapedBy[0], true
	}
	return l, true
}

// constantPerStatement reports whether expression e has one value for a whole statement, so
// the fast path can evaluate it once: no column references, and no function that differs
// from row to row (UUID(), RAND()); NOW() and its family are the statement's time.
func constantPerStatement(e gms.Expression) bool {
	if refersToColumns(e) {
		return false
	}
	ok := true
	transform.InspectExpr(e, func(x gms.Expression) bool {
		if n, nd := x.(gms.NonDeterministicExpression); nd && n.IsNonDeterministic() {
			f, isFunc := x.(gms.FunctionExpression)
			ok = isFunc && statementTimeFunctions[strings.ToLower(f.FunctionName())]
		}
		return !ok
	})
	return ok
}

// refersToColumns reports whether expression e reads a column of the row.
func refersToColumns(e gms.Expression) bool {
	refs := false
	transform.InspectExpr(e, func(x gms.Expression) bool {
		_, refs = x.(*expression.GetField)
		return refs
	})
	return refs
}

// statementTimeFunctions return the statement's start time (or a part of it) in every row.
var statementTimeFunctions = map[string]bool{
	"now": true, "current_timestamp": true, "localtime": true, "localtimestamp": true,
	"curdate": true, "current_date": true, "curtime": true, "current_time": true,
	"utc_timestamp": true, "utc_date": true, "utc_time": true,
}

func arrowSchemaOf(t *Table) (*arrow.Schema, error) {
	return table.ArrowSchema(t.snap.Schema)
}

// loadIter runs the load on its first Next and returns the OK result.
type loadIter struct {
	e        *Engine
	t        *Table
	ld       *plan.LoadData
	as       *arrow.Schema
	cols     []*colLoad
	fieldCol []int // field position → column ordinal
	pk       []int
	opt      csvOptions
	ignore   bool
	done     bool
}

func (l *loadIter) Close(*gms.Context) error { return nil }

func (l *loadIter) Next(ctx *gms.Context) (gms.Row, error) {
	return okOnce(ctx, &l.done, func(ctx *gms.Context) (int64, error) {
		n, err := l.run(ctx)
		return int64(n), err
	})
}

// okOnce runs a statement's work on the first call and returns MySQL's OK result with the
// rows affected; later calls end the iteration.
func okOnce(ctx *gms.Context, done *bool, run func(*gms.Context) (int64, error)) (gms.Row, error) {
	if *done {
		return nil, io.EOF
	}
	*done = true
	n, err := run(ctx)
	if err != nil {
		return nil, err
	}
	return gms.NewRow(types.NewOkResult(int(n))), nil
}

// open reads the input the way GMS's LOAD DATA does.
func (l *loadIter) open(ctx *gms.Context) (io.ReadCloser, error) {
	if l.ld.Local {
		_, v, ok := gms.SystemVariables.GetGlobal("local_infile")
		if !ok {
			return nil, fmt.Errorf("error: local_infile variable was not found")
		}
		if on, _ := v.(int8); on == 0 {
			return nil, fmt.Errorf("local_infile needs to be set to 1 to use LOCAL")
		}
		return ctx.LoadInfile(l.ld.File)
	}
	_, dir, ok := gms.SystemVariables.GetGlobal("secure_file_priv")
	if !ok {
		return nil, fmt.Errorf("error: secure_file_priv variable was not found")
	}
	if err := underSecureFileDir(dir, l.ld.File); err != nil {
		return nil, gms.ErrLoadDataCannotOpen.New(err.Error())
	}
	f, err := os.Open(l.ld.File)
	if err != nil {
		return nil, gms.ErrLoadDataCannotOpen.New(err.Error())
	}
	return f, nil
}

// underSecureFileDir is GMS's rowexec.isUnderSecureFileDir.
func underSecureFileDir(secureFileDir any, file string) error {
	if secureFileDir == nil || secureFileDir == "" {
		return nil
	}
	sStat, err := os.Stat(secureFileDir.(string))
	if err != nil {
		return err
	}
	fStat, err := os.Stat(filepath.Dir(file))
	if err != nil {
		return err
	}
	if os.SameFile(sStat, fStat) {
		return nil
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	dirAbs, _ := filepath.Abs(secureFileDir.(string))
	if strings.HasPrefix(abs, dirAbs) {
		return nil
	}
	return gms.ErrSecureFilePriv.New()
}

const loadBatchRecords = 4096

type parsed struct {
	b   *csvBatch
	err error
}

func (l *loadIter) run(ctx *gms.Context) (int, error) {
	w, err := l.t.stagedWrites(ctx)
	if err != nil {
		return 0, err
	}
	rc, err := l.open(ctx)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	w.begin()
	base := w.ins.len()
	n, err := l.convert(ctx, w, rc)
	if err != nil {
		w.discard()
		return 0, err
	}
	// The loaded rows' keys join the transaction's index only when something looks a key
	// up (see tableWrites.lazyKeys); complete must not index them.
	keys := w.stmt.keys
	w.stmt.keys = nil
	if err := w.complete(); err != nil {
		w.discard()
		return 0, err
	}
	if l.pk != nil {
		w.lazyKeys = append(w.lazyKeys, keyRun{base: base, keys: keys})
	}
	return n, nil
}

// indexKeys builds the map from key to position in the transaction's inserted rows
// (base = rows inserted before this statement) that tableWrites.complete would build, sized
// once (growing a map of millions of keys step by step costs more than filling it), with
// positions in shared backing arrays (capacity-limited slices, so a later append copies)
// instead of one allocation per key.
func indexKeys(base int, keys []string) map[string][]int {
	m := make(map[string][]int, len(keys))
	back := make([]int, len(keys))
	for j, k := range keys {
		back[j] = base + j
		if prev, ok := m[k]; ok { // keys of one load are distinct; kept for safety
			m[k] = append(prev, base+j)
			continue
		}
		m[k] = back[j : j+1 : j+1]
	}
	return m
}

func (l *loadIter) convert(ctx *gms.Context, w *tableWrites, rc io.Reader) (int, error) {
	// Parse in one goroutine, convert in this one; batches are recycled through free.
	out := make(chan parsed, 4)
	free := make(chan *csvBatch, 6)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(out)
		cr := newCSVReader(rc, l.opt)
		for {
			var b *csvBatch
			select {
			case b = <-free:
				b.reset()
			default:
				b = &csvBatch{first: []int32{0}}
			}
			more, err := cr.next(b, loadBatchRecords)
			if err != nil {
				select {
				case out <- parsed{err: err}:
				case <-stop:
				}
				return
			}
			l.parseCells(b)
			if b.records() > 0 {
				select {
				case out <- parsed{b: b}:
				case <-stop:
					return
				}
			}
			if !more {
				return
			}
		}
	}()

	rb := array.NewRecordBuilder(memory.DefaultAllocator, l.as)
	defer rb.Release()
	for i, cl := range l.cols {
		if err := cl.bind(rb.Field(i)); err != nil {
			return 0, err
		}
	}
	var ki *keyIndex
	if l.pk != nil {
		var err error
		if ki, err = l.e.keyIndexAt(ctx, l.t); err != nil {
			return 0, err
		}
	}
	var keyBuf []byte
	ks := keySet{src: &w.stmt.keys}
	if len(w.stmt.keys) > 0 {
		ks.build()
	}
	loaded, pending := 0, 0
	chunk := w.stmt.ins.chunk
	flush := func() error {
		if pending == 0 {
			return nil
		}
		rec := rb.NewRecordBatch()
		pending = 0
		for i := range l.cols {
			rb.Field(i).Reserve(chunk)
		}
		return w.stmt.ins.appendBatch(rec)
	}
	for p := range out {
		if p.err != nil {
			return 0, p.err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		b := p.b
		if ki != nil {
			ki.mu.Lock()
		}
		ncol := len(l.cols)
		for r := 0; r < b.records(); r++ {
			line := b.line[r]
			cells, errs := b.cells[r*ncol:(r+1)*ncol], b.errs[r*ncol:(r+1)*ncol]
			f0, f1 := int(b.first[r]), int(b.first[r+1])
			skip := false
			for j := 0; j < f1-f0 && j < len(l.fieldCol); j++ {
				ci := l.fieldCol[j]
				ve := errs[ci]
				if ve == nil {
					continue
				}
				k := f0 + j
				f := b.arena[b.offs[2*k]:b.offs[2*k+1]]
				if err := l.bad(ctx, ve, l.cols[ci], f, line, &cells[ci]); err != nil {
					if ki != nil {
						ki.mu.Unlock()
					}
					return 0, err
				} else if ve.skip {
					skip = true
					break
				}
			}
			if skip {
				continue
			}
			for ci, cl := range l.cols {
				if !cells[ci].set {
					cells[ci] = cell{}
					cl.setDefault(&cells[ci])
				}
				if cells[ci].null && !cl.col.Nullable {
					ve := &valErr{code: mysql.ERBadNullError, state: "23000", msg: fmt.Sprintf("Column '%s' cannot be null at line %d", cl.col.Name, line), skip: true}
					if !l.ignore {
						if ki != nil {
							ki.mu.Unlock()
						}
						return 0, ve.sqlError()
					}
					ctx.Warn(ve.code, "%s", ve.msg)
					skip = true
					break
				}
			}
			if skip {
				continue
			}
			var k string
			if l.pk != nil {
				keyBuf = keyBuf[:0]
				for _, o := range l.pk {
					keyBuf = l.cols[o].key(keyBuf, &cells[o])
				}
				k = ks.intern(keyBuf)
				if l.duplicate(w, ki, &ks, k) {
					msg := fmt.Sprintf("Duplicate entry '%s' for key '%s.PRIMARY' at line %d", l.keyText(cells), l.t.Name(), line)
					if !l.ignore {
						ki.mu.Unlock()
						return 0, mysql.NewSQLError(mysql.ERDupEntry, "23000", "%s", msg)
					}
					ctx.Warn(mysql.ERDupEntry, "%s", msg)
					continue
				}
			}
			for ci, cl := range l.cols {
				if err := cl.appendCell(&cells[ci]); err != nil {
					if ki != nil {
						ki.mu.Unlock()
					}
					return 0, fmt.Errorf("column %q at line %d: %w", cl.col.Name, line, err)
				}
			}
			if l.pk != nil {
				ks.add(k)
				w.stmt.keys = append(w.stmt.keys, k)
			}
			loaded++
			pending++
			if pending >= chunk {
				if err := flush(); err != nil {
					if ki != nil {
						ki.mu.Unlock()
					}
					return 0, err
				}
			}
		}
		if ki != nil {
			ki.mu.Unlock()
		}
		select {
		case free <- b:
		default:
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	if loaded > 0 {
		w.stmt.ops["insert"] = true
	}
	return loaded, nil
}

// parseCells converts the fields of every record of b into b.cells (records × columns), in the
// parser's goroutine; a rejected value leaves its error in b.errs for the converter, which
// alone may warn or fail the statement.
func (l *loadIter) parseCells(b *csvBatch) {
	ncol := len(l.cols)
	n := b.records() * ncol
	if cap(b.cells) < n {
		b.cells, b.errs = make([]cell, n), make([]*valErr, n)
	}
	b.cells, b.errs = b.cells[:n], b.errs[:n]
	for r := 0; r < b.records(); r++ {
		cells, errs := b.cells[r*ncol:(r+1)*ncol], b.errs[r*ncol:(r+1)*ncol]
		for ci := range cells {
			cells[ci].set = false
			errs[ci] = nil
		}
		f0, f1 := int(b.first[r]), int(b.first[r+1])
		for j := 0; j < f1-f0 && j < len(l.fieldCol); j++ {
			ci := l.fieldCol[j]
			cl, c := l.cols[ci], &cells[ci]
			c.set, c.null, c.boxed = true, false, false // parse sets the fields of its kind
			k := f0 + j
			st, e := b.offs[2*k], b.offs[2*k+1]
			if st < 0 {
				c.null = true
				continue
			}
			f := b.arena[st:e]
			if len(f) == 0 && !cl.text {
				// An empty field of a non-string column reads as the default (GMS).
				cl.setDefault(c)
				continue
			}
			errs[ci] = cl.parse(f, c)
		}
	}
}

// duplicate reports whether key k is already live: staged by this statement, inserted earlier
// in the transaction, or in the pinned snapshot and not deleted since. ki.mu is held.
func (l *loadIter) duplicate(w *tableWrites, ki *keyIndex, ks *keySet, k string) bool {
	if ks.has(k) {
		return true
	}
	if w.ins.len() > 0 {
		if _, ok, _ := w.livePendingInsert(k); ok {
			return true
		}
	}
	if w.deletedFromSnapshot(k) > 0 {
		return false
	}
	path, ok := ki.get(k)
	if !ok {
		return false
	}
	_, ok = l.t.snap.File(path)
	return ok
}

// keySet holds the keys this statement loaded. Input sorted by key (the usual bulk load) needs
// no set at all: a key greater than every earlier one (encoded keys compare as bytes) is new.
// The set is built only once the keys stop ascending. Key strings live in large shared
// arenas instead of one allocation each.
type keySet struct {
	src   *[]string // every key loaded so far, in order (the statement's staged keys)
	max   string
	set   map[string]struct{}
	arena []byte
}

func (s *keySet) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(s.arena)+len(b) > cap(s.arena) {
		s.arena = make([]byte, 0, max(1<<20, len(b)))
	}
	st := len(s.arena)
	s.arena = append(s.arena, b...)
	return unsafe.String(&s.arena[st], len(b))
}

func (s *keySet) ascending(k string) bool {
	return s.set == nil && (len(*s.src) == 0 || k > s.max)
}

func (s *keySet) build() {
	s.set = make(map[string]struct{}, 2*len(*s.src))
	for _, x := range *s.src {
		s.set[x] = struct{}{}
	}
}

func (s *keySet) has(k string) bool {
	if s.ascending(k) {
		return false
	}
	if s.set == nil {
		s.build()
	}
	_, ok := s.set[k]
	return ok
}

// add records k; call before k is appended to *src.
func (s *keySet) add(k string) {
	if s.ascending(k) {
		s.max = k
		return
	}
	if s.set == nil {
		s.build()
	}
	s.set[k] = struct{}{}
}

func (l *loadIter) keyText(cells []cell) string {
	parts := make([]string, len(l.pk))
	for i, o := range l.pk {
		parts[i] = l.cols[o].text2(&cells[o])
	}
	return strings.Join(parts, "-")
}
