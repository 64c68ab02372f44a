// Package sql is the only package that imports go-mysql-server. It adapts the catalog and
// Delta tables to the engine: a provider of databases, tables at pinned versions, sessions
// whose transactions buffer writes until commit, time travel, and the lake_* procedures and
// table functions.
package sql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	sqle "github.com/dolthub/go-mysql-server"
	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/rowexec"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/sirupsen/logrus"

	"github.com/lakehoused/lakehoused/catalog"
	"github.com/lakehoused/lakehoused/compaction"
	"github.com/lakehoused/lakehoused/connector"
	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/table"
	"github.com/lakehoused/lakehoused/txlog"
)

// Config wires the engine to the layers below.
type Config struct {
	Catalog   *catalog.Catalog
	Committer txlog.Committer
	// OpenURL opens the store of a table attached by URL (storage.Open).
	OpenURL func(string) (storage.Store, error)
	Logger  *slog.Logger
	// Version is reported in @@version_comment and commitInfo.engineInfo.
	Version string
	// Resolver reads and writes the URLs of table functions and exports; default one that
	// allows no file:// URLs.
	Resolver *connector.Resolver
	// DataDir holds node-local state: the connections file and its key.
	DataDir string
	// CopySpillRows is how many rows an autocommit copy into a keyless table stages before
	// writing them out as data files during the statement; default 2Mi.
	CopySpillRows int
	// Jobs registers maintenance jobs (shared with auto-compaction); default a new one.
	Jobs *compaction.Jobs
	// Cluster is the node's cluster; nil without the Raft coordinator.
	Cluster Cluster
	// Warehouse is the warehouse's store, where ml_train and ml_search keep model files
	// under _artifacts/ (as the MLflow artifact proxy does); nil: models cannot be saved.
	Warehouse storage.Store
}

// Engine is the SQL engine over the warehouse.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	jobs     *compaction.Jobs
	provider *Provider
	sqle     *sqle.Engine

	keysMu sync.Mutex
	keys   map[*catalog.Table]*keyIndex

	groupsMu sync.Mutex
	groups   map[*catalog.Table]*groupCommitter

	countsMu sync.Mutex
	counts   map[*catalog.Table]rowCount

	// Scan counters for /metrics: data files a scan could have read, and files it read
	// after pruning by partition values and statistics.
	filesConsidered atomic.Int64
	filesScanned    atomic.Int64
	commits         atomic.Int64
	fastLoads       atomic.Int64 // LOAD DATA statements run by the columnar fast path (loaddata.go)
	connState
	mlState
	sessions   sync.Map     // connection id → *Session, for the protocol handler (handler.go)
	fastCopies atomic.Int64 // INSERT … SELECT from a source function staged as Arrow (copyfast.go)
}

func (e *Engine) countScan(considered, read int) {
	e.filesConsidered.Add(int64(considered))
	e.filesScanned.Add(int64(read))
}

// Metrics returns the engine's counters, named as /metrics shows them.
func (e *Engine) Metrics() map[string]int64 {
	return map[string]int64{
		"lakehoused_scan_files_considered_total": e.filesConsidered.Load(),
		"lakehoused_scan_files_read_total":       e.filesScanned.Load(),
		"lakehoused_commits_total":               e.commits.Load(),
		"lakehoused_load_data_fast_total":        e.fastLoads.Load(),
		"lakehoused_insert_select_fast_total":    e.fastCopies.Load(),
	}
}

// NewEngine builds the GMS engine over the catalog.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, keys: map[*catalog.Table]*keyIndex{}, groups: map[*catalog.Table]*groupCommitter{}, counts: map[*catalog.Table]rowCount{}}
	if e.cfg.Resolver == nil {
		e.cfg.Resolver = &connector.Resolver{}
	}
	if e.cfg.CopySpillRows <= 0 {
		e.cfg.CopySpillRows = defaultSpillRows
	}
	e.jobs = cfg.Jobs
	if e.jobs == nil {
		e.jobs = &compaction.Jobs{}
	}
	e.provider = newProvider(e)
	e.sqle = sqle.NewDefault(e.provider)
	e.sqle.ProcessList = &progressList{ProcessList: e.sqle.ProcessList, jobs: e.jobs}
	gms.SystemVariables.AddSystemVariables(maintenanceVariables())
	gms.SystemVariables.AddSystemVariables(clusterVariables())
	e.sqle.Analyzer.ExecBuilder = rowexec.NewOverrideBuilder(loadBuilder{e})
	// GMS logs every query error at warning level through the global logrus logger; our
	// own structured log reports what matters.
	if !cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
		logrus.SetLevel(logrus.ErrorLevel)
	}
	if err := gms.SystemVariables.AssignValues(map[string]any{
		"version_comment": "lakehoused " + cfg.Version,
		"local_infile":    int8(1),
	}); err != nil {
		return nil, fmt.Errorf("sql: set system variables: %w", err)
	}
	return e, nil
}

// GMS returns the underlying engine for the server.
func (e *Engine) GMS() *sqle.Engine { return e.sqle }

// Close stops the engine's background work.
func (e *Engine) Close() error { return e.sqle.Close() }

// commitTable writes w's data files and commits them to the table's log at the version the
// transaction read; insert-only writes go through group commit. A failure removes the files
// it wrote, so nothing is left referenced.
func (e *Engine) commitTable(ctx *gms.Context, w *tableWrites) error {
	if !w.truncated && len(w.deletes) == 0 && w.props == nil {
		err := e.groupCommit(ctx, w)
		if err != nil && !errors.Is(err, storage.ErrOutcomeUnknown) {
			// Turned away (a schema change, a failed write) or failed: files a large copy
			// already wrote will not be committed. Deleting them twice is harmless.
			deleteFiles(w.table.Store, w.spilled)
		}
		return err
	}
	// Deleted rows are identified by their values, not by file, so when the only commits
	// in the way rearranged files (OPTIMIZE, auto-compaction, ZORDER: same rows, new
	// files) the rewrite is redone on the newer version instead of failing the client.
	for attempt := 0; ; attempt++ {
		err := e.commitRewrite(ctx, w)
		var re *txlog.RebaseError
		if !errors.As(err, &re) {
			if err != nil && !errors.Is(err, storage.ErrOutcomeUnknown) {
				deleteFiles(w.table.Store, w.spilled)
			}
			return err
		}
		if attempt >= maxRewriteRebases {
			deleteFiles(w.table.Store, w.spilled)
			return tableError(w.table, err)
		}
		snap, serr := w.table.Log.Snapshot(ctx, re.Version)
		if serr != nil {
			deleteFiles(w.table.Store, w.spilled)
			return tableError(w.table, err)
		}
		w.snap = snap
	}
}

// maxRewriteRebases bounds how often an UPDATE or DELETE is redone over compactions.
const maxRewriteRebases = 5

// commitRewrite is one attempt of commitTable's copy-on-write commit. A conflict with
// commits that only rearranged files is returned as the *txlog.RebaseError itself.
func (e *Engine) commitRewrite(ctx *gms.Context, w *tableWrites) error {
	ct, snap := w.table, w.snap
	name := ct.Entry.Database + "." + ct.Entry.Name
	sch, err := gmsColumns(ctx, ct.Entry.Name, snap.Schema, primaryKeyColumns(snap))
	if err != nil {
		return err
	}
	as, err := table.ArrowSchema(snap.Schema)
	if err != nil {
		return fmt.Errorf("table %s: %w", name, err)
	}
	opts := writerOptions(snap)
	partCols := snap.Metadata.PartitionColumns
	var actions []txlog.Action
	var written []*txlog.Add
	cleanup := func() { deleteFiles(ct.Store, written) }
	now := time.Now().UnixMilli()
	var numDeleted, numCopied int64

	switch {
	case w.truncated:
		for _, f := range snap.Files {
			actions = append(actions, txlog.Action{Remove: removeOf(f, now)})
		}
	case len(w.deletes) > 0:
		remaining := make(map[string]int, len(w.deletes))
		for k, n := range w.deletes {
			remaining[k] = n
		}
		readers, err := (&Table{schema: sch}).readers(as, nil)
		if err != nil {
			return err
		}
		candidates, err := e.deleteCandidates(ctx, w, sch)
		if err != nil {
			return err
		}
		adds, removes, err := table.Rewrite(ctx, ct.Store, snap.Schema, partCols, candidates, opts,
			func(rec arrow.RecordBatch) (arrow.RecordBatch, bool, error) {
				rows, err := recordRows(rec, readers)
				if err != nil {
					return nil, false, err
				}
				kept := rows[:0]
				for _, r := range rows {
					k := w.key(r)
					if remaining[k] > 0 {
						remaining[k]--
						numDeleted++
						continue
					}
					kept = append(kept, r)
				}
				if len(kept) == len(rows) {
					return rec, false, nil
				}
				numCopied += int64(len(kept))
				out, err := rowsToRecord(kept, sch.Schema, as)
				return out, true, err
			})
		written = append(written, adds...)
		if err != nil {
			cleanup()
			return fmt.Errorf("table %s: rewrite for delete: %w", name, err)
		}
		for k, n := range remaining {
			if n > 0 {
				_ = k
				cleanup()
				return mysql.NewSQLError(mysql.ERLockDeadlock, mysql.SSLockDeadlock,
					"table %s: rows this transaction changed are no longer in version %d; retry the transaction", name, snap.Version)
			}
		}
		for _, a := range adds {
			actions = append(actions, txlog.Action{Add: a})
		}
		for _, r := range removes {
			actions = append(actions, txlog.Action{Remove: r})
		}
	}

	inserted := w.liveInserts()
	// Files a large copy already wrote join this commit. They are not this attempt's to
	// clean up (a rebased attempt commits them again): commitTable drops them on failure.
	for _, a := range w.spilled {
		actions = append(actions, txlog.Action{Add: a})
	}
	inserted += int(w.spilledRows)
	if w.liveInserts() > 0 {
		adds, err := writeInserts(ctx, ct.Store, snap, w)
		if err != nil {
			cleanup()
			return fmt.Errorf("table %s: write: %w", name, err)
		}
		written = append(written, adds...)
		for _, a := range adds {
			actions = append(actions, txlog.Action{Add: a})
		}
	}

	if w.props != nil {
		md := snap.Metadata
		md.Configuration = make(map[string]string, len(snap.Metadata.Configuration)+len(w.props))
		for k, v := range snap.Metadata.Configuration {
			md.Configuration[k] = v
		}
		for k, v := range w.props {
			md.Configuration[k] = v
		}
		actions = append(actions, txlog.Action{MetaData: &md})
	}
	// This path always deletes, truncates or changes properties, so the commit is never a
	// blind append.
	blind := false
	op := w.operation()
	params := map[string]any{}
	if op == "WRITE" {
		params["mode"] = "Append"
	}
	info := &txlog.CommitInfo{
		Timestamp:           now,
		Operation:           op,
		OperationParameters: params,
		IsBlindAppend:       &blind,
		UserName:            ctx.Client().User,
		OperationMetrics: map[string]string{
			"numOutputRows":  strconv.Itoa(inserted + int(numCopied)),
			"numDeletedRows": strconv.FormatInt(numDeleted, 10),
			"numAddedFiles":  strconv.Itoa(len(written) + len(w.spilled)),
		},
	}
	actions = append([]txlog.Action{{CommitInfo: info}}, actions...)
	// WriteSerializable (Delta's default): rows other clients inserted meanwhile are ordered
	// after this transaction instead of failing it, unless one of them has a key it writes.
	ws := txlog.WriteSerializable(func(appends []txlog.Commit) error { return e.checkAppendedKeys(ctx, w, sch, appends) })
	// Not cancelled with the statement (KILL, a client gone): a commit abandoned half-way
	// has an unknown outcome, and its files could not be cleaned up safely.
	if _, err := e.cfg.Committer.Commit(context.WithoutCancel(ctx), ct.Log, snap.Version, actions, ws); err != nil {
		if !errors.Is(err, storage.ErrOutcomeUnknown) {
			cleanup() // the commit is not in the log: its files must go
		}
		if re := (*txlog.RebaseError)(nil); errors.As(err, &re) {
			return re
		}
		return tableError(ct, err)
	}
	e.commits.Add(1)
	return nil
}

// checkAppendedKeys refuses to commit w after concurrent appends when a key w inserts is
// now in the table and w did not delete it: an UPDATE that set a key another client
// inserted meanwhile. The latest key index is asked about the key itself, not about the
// appended files, because a compaction may already have moved the other row into a new
// file. Keyless tables accept duplicates, so only keyed tables check.
func (e *Engine) checkAppendedKeys(ctx *gms.Context, w *tableWrites, sch gms.PrimaryKeySchema, appends []txlog.Commit) error {
	if len(w.pk) == 0 || w.liveInserts() == 0 {
		return nil
	}
	latest, err := w.table.Log.Snapshot(ctx, -1)
	if err != nil {
		return err
	}
	ki, err := e.keyIndexAt(ctx, &Table{ct: w.table, snap: latest, schema: sch, pkCols: primaryKeyColumns(latest)})
	if err != nil {
		return err
	}
	ki.mu.Lock()
	defer ki.mu.Unlock()
	var dup string
	w.eachLiveKey(func(k string, pos int) bool {
		taken := ki.has(k) && w.deletes[k] == 0
		if taken && w.truncated {
			// A truncating transaction removes every file of its snapshot: only keys in
			// files appended since then are in its way.
			path, _ := ki.get(k)
			_, ours := w.snap.File(path)
			taken = !ours
		}
		if taken {
			dup = "(unreadable)"
			if r, err := w.ins.row(pos); err == nil {
				dup = keyText(r, w.pk)
			}
			return false
		}
		return true
	})
	if dup != "" {
		return fmt.Errorf("%w: another transaction inserted key '%s', which this one also writes", txlog.ErrConflict, dup)
	}
	return nil
}

// deleteFiles removes data files that no commit references (their commit failed).
func deleteFiles(store storage.Store, adds []*txlog.Add) {
	for _, a := range adds {
		_ = store.Delete(context.Background(), txlog.DecodePath(a.Path))
	}
}

// rowCount is a table's row count from its files' statistics at one version.
type rowCount struct {
	version int64
	n       uint64
	exact   bool
}

// snapshotRowCount sums numRecords over snap's files. GMS asks while planning (costing,
// COUNT(*)), so the latest version's count is kept per table rather than parsing every
// file's stats JSON for each statement.
func (e *Engine) snapshotRowCount(ct *catalog.Table, snap *txlog.Snapshot) (uint64, bool) {
	e.countsMu.Lock()
	c, ok := e.counts[ct]
	e.countsMu.Unlock()
	if ok && c.version == snap.Version {
		return c.n, c.exact
	}
	c = rowCount{version: snap.Version, exact: true}
	for _, f := range snap.Files {
		st, err := txlog.ParseStats(f.Stats)
		if err != nil || st == nil || f.DeletionVector != nil {
			c.exact = false
			continue
		}
		c.n += uint64(st.NumRecords)
	}
	e.countsMu.Lock()
	if old, ok := e.counts[ct]; !ok || old.version < c.version {
		e.counts[ct] = c
	}
	e.countsMu.Unlock()
	return c.n, c.exact
}

// deleteCandidates returns the files that can hold the rows w deletes, so UPDATE and DELETE
// read and rewrite only those: by the key index on keyed tables, and otherwise by the files'
// statistics against the smallest range of each column that covers the deleted rows.
func (e *Engine) deleteCandidates(ctx *gms.Context, w *tableWrites, sch gms.PrimaryKeySchema) ([]*txlog.Add, error) {
	snap := w.snap
	if len(w.pk) > 0 {
		t := &Table{ct: w.table, snap: snap, schema: sch, pkCols: primaryKeyColumns(snap)}
		ki, err := e.keyIndexAt(ctx, t)
		if err != nil {
			return nil, err
		}
		paths := map[string]bool{}
		ki.mu.Lock()
		for k := range w.deletes {
			if p, ok := ki.get(k); ok {
				paths[p] = true
			}
		}
		ki.mu.Unlock()
		var out []*txlog.Add
		for _, f := range snap.Files {
			if paths[f.Path] {
				out = append(out, f)
			}
		}
		return out, nil
	}
	return table.PruneFiles(snap.Schema, snap.Metadata.PartitionColumns, snap.Files, coveringFilter(ctx, w.delRows, sch.Schema)), nil
}

// coveringFilter is, per column, the [min, max] of rows' values: every row satisfies it, so
// a file it excludes holds none of them. Columns where a row is NULL are left out.
func coveringFilter(ctx *gms.Context, rows []gms.Row, sch gms.Schema) *table.Filter {
	if len(rows) == 0 {
		return nil
	}
	f := &table.Filter{}
cols:
	for c, col := range sch {
		lo, hi := rows[0][c], rows[0][c]
		for _, r := range rows {
			v := r[c]
			if v == nil {
				continue cols
			}
			if cmp, err := col.Type.Compare(ctx, v, lo); err != nil {
				continue cols
			} else if cmp < 0 {
				lo = v
			}
			if cmp, err := col.Type.Compare(ctx, v, hi); err != nil {
				continue cols
			} else if cmp > 0 {
				hi = v
			}
		}
		l, h := filterValue(lo), filterValue(hi)
		if l == nil || h == nil {
			continue
		}
		f.Columns = append(f.Columns, table.ColumnFilter{Column: col.Name,
			Ranges: []table.Range{{Lo: table.Bound{Value: l, Inclusive: true}, Hi: table.Bound{Value: h, Inclusive: true}}}})
	}
	return f
}

// keyText renders a key the way MySQL's duplicate-entry message does: values joined by '-'.
func keyText(r gms.Row, ords []int) string {
	parts := make([]string, len(ords))
	for i, o := range ords {
		parts[i] = fmt.Sprint(r[o])
	}
	return strings.Join(parts, "-")
}

func removeOf(f *txlog.Add, now int64) *txlog.Remove {
	size := f.Size
	ext := true
	return &txlog.Remove{Path: f.Path, DeletionTimestamp: &now, DataChange: true, ExtendedFileMetadata: &ext,
		PartitionValues: f.PartitionValues, Size: &size}
}

func writerOptions(snap *txlog.Snapshot) table.WriterOptions {
	return table.OptionsFor(snap.Metadata.Configuration)
}

// recordRows converts a whole record to GMS rows.
func recordRows(rec arrow.RecordBatch, readers []valueReader) ([]gms.Row, error) {
	n := int(rec.NumRows())
	rows := make([]gms.Row, n)
	for i := 0; i < n; i++ {
		r := make(gms.Row, len(readers))
		for c, rd := range readers {
			v, err := rd(rec.Column(c), i)
			if err != nil {
				return nil, err
			}
			r[c] = v
		}
		rows[i] = r
	}
	return rows, nil
}

// noteInserted moves the table's key index to version v when v is a commit made on top of
// the index's version that added a single file: every key the writes ws inserted is in that
// file, so the index needs no read of it. Other cases are left to the next lookup, which
// reads the added files' key columns.
func (e *Engine) noteInserted(ct *catalog.Table, v int64, actions []txlog.Action, ws []*tableWrites) {
	if len(ws) == 0 || len(ws[0].pk) == 0 {
		return
	}
	var adds []*txlog.Add
	for _, a := range actions {
		switch {
		case a.Add != nil:
			adds = append(adds, a.Add)
		case a.Remove != nil, a.MetaData != nil:
			return
		}
	}
	fileOf, rows, ok := rowFiles(adds, ws)
	if !ok {
		return // the next check reads the new files' keys instead
	}
	e.keysMu.Lock()
	ki := e.keys[ct]
	e.keysMu.Unlock()
	if ki == nil {
		return
	}
	update := func() {
		ki.mu.Lock()
		defer ki.mu.Unlock()
		if ki.version != v-1 {
			return
		}
		if len(ki.keys) == 0 {
			ki.keys = make(map[string]string, rows) // the first load: no rehashing as it fills
		}
		for _, a := range adds {
			ki.files[a.Path] = true
		}
		row := 0
		for _, w := range ws {
			w.eachLiveKeyInOrder(func(k string, _ int) bool {
				ki.note(k, fileOf(row))
				row++
				return true
			})
		}
		ki.version = v
	}
	if rows > backgroundIndexRows {
		ki.mu.Lock()
		empty := len(ki.keys) == 0
		ki.mu.Unlock()
		if empty {
			// A bulk load into an empty table: the table may well never take another keyed
			// write, and a live index costs ~80 B per key plus GC marking for the whole
			// process. Leave it to be built from the files when a keyed statement needs it.
			return
		}
		// A large commit to a table whose index is in use: index its keys after the
		// client has the OK; the next keyed statement waits for the index (a fraction of a
		// second per million keys) instead of rebuilding it from the files.
		go update()
		return
	}
	update()
}

// backgroundIndexRows: commits with more inserted rows update the key index in the background.
const backgroundIndexRows = 64 << 10

// rowFiles maps the n-th live row that ws wrote (in order) to the file holding it, and
// counts those rows: with one file, trivially; with several files of an unpartitioned table,
// by their row counts, since the writer fills files in row order. ok is false when that
// cannot be known.
func rowFiles(adds []*txlog.Add, ws []*tableWrites) (fileOf func(int) string, rows int, ok bool) {
	for _, w := range ws {
		rows += w.liveInserts()
	}
	switch {
	case len(adds) == 0:
		return nil, 0, false
	case len(adds) == 1:
		p := adds[0].Path
		return func(int) string { return p }, rows, true
	}
	ends := make([]int, len(adds)) // cumulative row counts
	total := 0
	for i, a := range adds {
		if len(a.PartitionValues) > 0 {
			return nil, 0, false
		}
		st, err := txlog.ParseStats(a.Stats)
		if err != nil || st == nil || st.NumRecords <= 0 {
			return nil, 0, false
		}
		total += int(st.NumRecords)
		ends[i] = total
	}
	if rows != total {
		return nil, 0, false
	}
	f := 0
	return func(row int) string {
		for row >= ends[f] {
			f++
		}
		return adds[f].Path
	}, rows, true
}

// keyIndex maps every primary key of one table version to the file holding it, so an insert
// checks uniqueness without a scan. It is built once from the key columns and then moved
// forward version by version: keys of removed files are dropped, added files are read.
type keyIndex struct {
	mu      sync.Mutex
	version int64
	files   map[string]bool   // live file paths at version
	keys    map[string]string // key → file path; entries of removed files are stale (see get)
	// fileKeys counts the keys indexed per file, and stale estimates the entries left
	// pointing at removed files: they are swept when they reach a quarter of the map, so a
	// compaction (which removes files whose keys the next read re-points) costs the index
	// the new file's keys, not a pass over every key of the table.
	fileKeys map[string]int
	stale    int
}

// get returns the file holding key k at the index's version. An entry whose file has been
// removed since it was indexed is stale: the key is gone (a file re-adding it would have
// re-pointed it).
func (ki *keyIndex) get(k string) (string, bool) {
	p, ok := ki.keys[k]
	if !ok || !ki.files[p] {
		return "", false
	}
	return p, true
}

// has reports whether key k is in the table at the index's version.
func (ki *keyIndex) has(k string) bool {
	_, ok := ki.get(k)
	return ok
}

// note records that key k lives in file path.
func (ki *keyIndex) note(k, path string) {
	ki.keys[k] = path
	if ki.fileKeys == nil {
		ki.fileKeys = map[string]int{}
	}
	ki.fileKeys[path]++
}

// lookupKey returns the row with key k in t's snapshot, if any.
func (e *Engine) lookupKey(ctx *gms.Context, t *Table, k string) (gms.Row, bool, error) {
	ki, err := e.keyIndexAt(ctx, t)
	if err != nil {
		return nil, false, err
	}
	ki.mu.Lock()
	path, ok := ki.get(k)
	ki.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	f, ok := t.snap.File(path)
	if !ok {
		return nil, false, nil
	}
	rows, err := e.readFileRows(ctx, t, f)
	if err != nil {
		return nil, false, err
	}
	for _, r := range rows {
		if rowKey(r, t.schema.PkOrdinals) == k {
			return r, true, nil
		}
	}
	return nil, false, nil
}

func (e *Engine) readFileRows(ctx context.Context, t *Table, f *txlog.Add) ([]gms.Row, error) {
	sc, err := table.Scan(ctx, t.ct.Store, t.snap.Schema, t.snap.Metadata.PartitionColumns, []*txlog.Add{f}, table.ScanOptions{})
	if err != nil {
		return nil, tableError(t.ct, err)
	}
	defer sc.Close()
	readers, err := t.readers(sc.Schema(), nil)
	if err != nil {
		return nil, err
	}
	var out []gms.Row
	for {
		rec, _, err := sc.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, tableError(t.ct, err)
		}
		rows, err := recordRows(rec, readers)
		rec.Release()
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
}

// keyIndexAt returns an index matching t's pinned version exactly. The shared index moves
// forward; a transaction pinned to an older version gets a private one (rare: it needs a
// concurrent commit, and such an insert would then fail the commit's conflict check anyway).
// Readers of the returned index hold its mu: commits move the shared one forward.
func (e *Engine) keyIndexAt(ctx context.Context, t *Table) (*keyIndex, error) {
	e.keysMu.Lock()
	ki, ok := e.keys[t.ct]
	if !ok {
		ki = &keyIndex{version: -1, files: map[string]bool{}, keys: map[string]string{}}
		e.keys[t.ct] = ki
	}
	e.keysMu.Unlock()
	ki.mu.Lock()
	defer ki.mu.Unlock()
	if ki.version > t.snap.Version {
		private := &keyIndex{version: -1, files: map[string]bool{}, keys: map[string]string{}}
		return private, e.advance(ctx, t, private)
	}
	return ki, e.advance(ctx, t, ki)
}

func (e *Engine) advance(ctx context.Context, t *Table, ki *keyIndex) error {
	if ki.version == t.snap.Version {
		return nil
	}
	live := make(map[string]bool, len(t.snap.Files))
	var added []*txlog.Add
	for _, f := range t.snap.Files {
		live[f.Path] = true
		if !ki.files[f.Path] {
			added = append(added, f)
		}
	}
	removed := false
	for p := range ki.files {
		if !live[p] {
			removed = true
			ki.stale += ki.fileKeys[p]
			delete(ki.fileKeys, p)
		}
	}
	if removed && (len(live) == 0 || ki.stale > len(ki.keys)/4) {
		for k, p := range ki.keys {
			if !live[p] {
				delete(ki.keys, k)
			}
		}
		ki.stale = 0
	}
	if len(added) > 0 {
		sc, err := table.Scan(ctx, t.ct.Store, t.snap.Schema, t.snap.Metadata.PartitionColumns, added, table.ScanOptions{Columns: t.pkCols})
		if err != nil {
			return tableError(t.ct, err)
		}
		defer sc.Close()
		// The scan's column order need not be the key's; keyOrds maps key position → column.
		readers, err := t.readers(sc.Schema(), nil)
		if err != nil {
			return err
		}
		keyOrds := make([]int, len(t.pkCols))
		for i, c := range t.pkCols {
			keyOrds[i] = -1
			for j, f := range sc.Schema().Fields() {
				if strings.EqualFold(f.Name, c) {
					keyOrds[i] = j
				}
			}
			if keyOrds[i] < 0 {
				return fmt.Errorf("table %s: key column %q missing from scan", t.Name(), c)
			}
		}
		for {
			rec, f, err := sc.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return tableError(t.ct, err)
			}
			rows, err := recordRows(rec, readers)
			rec.Release()
			if err != nil {
				return err
			}
			for _, r := range rows {
				ki.note(rowKey(r, keyOrds), f.Path)
			}
		}
	}
	ki.files = live
	ki.version = t.snap.Version
	return nil
}
