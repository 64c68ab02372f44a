// Package catalog names the warehouse's databases and tables and says where each table's
// Delta log lives. It is the only state outside the tables themselves, kept as small JSON
// objects under <warehouse>/_lakehouse/ so a restarted node (or, later, a Raft FSM) rebuilds
// it by listing one prefix.
//
// A managed table lives at <warehouse>/<database>/<table>/; an attached table (lake_attach)
// lives wherever another engine wrote it and is only referenced here.
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// Errors callers test for; the sql layer maps them to MySQL error codes.
var (
	ErrDatabaseNotFound = errors.New("unknown database")
	ErrDatabaseExists   = errors.New("database exists")
	ErrTableNotFound    = errors.New("unknown table")
	ErrTableExists      = errors.New("table already exists")
)

const (
	statePrefix = "_lakehouse/"
	dbPrefix    = statePrefix + "databases/"
	tablePrefix = statePrefix + "tables/"
)

// TableEntry is what the catalog stores for one table.
type TableEntry struct {
	Database string `json:"database"`
	Name     string `json:"name"`
	// Location is a key below the warehouse for managed tables, or an absolute URL
	// (file:///…, s3://…) for attached ones.
	Location string `json:"location"`
	Attached bool   `json:"attached,omitempty"`
	// ReadOnly tables (attached with READ ONLY) take no writes and no maintenance from
	// this warehouse: another engine owns them.
	ReadOnly bool  `json:"read_only,omitempty"`
	Created  int64 `json:"created"` // ms since epoch
}

type databaseEntry struct {
	Name    string `json:"name"`
	Created int64  `json:"created"`
}

// Table is an open table: its catalog entry, its store and its log.
type Table struct {
	Entry TableEntry
	Store storage.Store
	Log   *txlog.Log
}

type database struct {
	entry  databaseEntry
	tables map[string]*Table // by lower-cased name
}

// Catalog is safe for concurrent use.
type Catalog struct {
	warehouse storage.Store
	openURL   func(string) (storage.Store, error)
	opts      options

	mu  sync.RWMutex
	dbs map[string]*database // by lower-cased name

	// Other nodes sharing the warehouse change the catalog too: stale says this node was
	// told of a change it has not read yet; refreshMu lets one refresh run at a time.
	stale     atomic.Bool
	refreshMu sync.Mutex
	// gen counts this node's own changes (under mu): a refresh that overlapped one reads
	// again rather than install a view older than it.
	gen uint64
	// raw caches the entries as last read, by key: an entry whose size and modification
	// time are unchanged in the listing is not read again. Used under refreshMu (or by Open).
	raw map[string]rawEntry
}

type rawEntry struct {
	info storage.ObjectInfo
	data []byte
	// settled: read when its modification time was over 2 s old, so a rewrite would have a
	// later time even where stores keep whole seconds (S3).
	settled bool
}

// Option adjusts a catalog.
type Option func(*options)

type options struct {
	wrap    func(storage.Store) storage.Store
	dropped func(ctx context.Context, url string) error
	changed func(ctx context.Context) error
}

// OnChange is called after each change this node makes to the catalog, to tell the other
// nodes sharing the warehouse (they call MarkStale). Its failure fails nothing: the change
// is durable, and a node that misses a name reads the catalog again before saying so.
func OnChange(fn func(ctx context.Context) error) Option {
	return func(o *options) { o.changed = fn }
}

// WrapTableStores has every table's store wrapped (the cluster ratifies commits through it).
func WrapTableStores(wrap func(storage.Store) storage.Store) Option {
	return func(o *options) { o.wrap = wrap }
}

// OnDropped is told the URL of each managed table whose files a DROP deleted, so that a
// new table may use the folder again.
func OnDropped(fn func(ctx context.Context, url string) error) Option {
	return func(o *options) { o.dropped = fn }
}

// Open loads the catalog of the warehouse. openURL opens the stores of attached tables
// (storage.Open in production).
func Open(ctx context.Context, warehouse storage.Store, openURL func(string) (storage.Store, error), opts ...Option) (*Catalog, error) {
	c := &Catalog{warehouse: warehouse, openURL: openURL, dbs: map[string]*database{}}
	for _, o := range opts {
		o(&c.opts)
	}
	dbs, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	c.dbs = dbs
	return c, nil
}

// load reads the catalog from the warehouse. A table whose entry is unchanged keeps its open
// *Table (and the caches hung on it).
func (c *Catalog) load(ctx context.Context) (map[string]*database, error) {
	c.mu.RLock()
	old := map[string]*Table{}
	for _, d := range c.dbs {
		for _, t := range d.tables {
			old[tableKey(t.Entry.Database, t.Entry.Name)] = t
		}
	}
	c.mu.RUnlock()
	dbs := map[string]*database{}
	objs, err := c.warehouse.List(ctx, dbPrefix)
	if err != nil {
		return nil, fmt.Errorf("catalog: list databases: %w", err)
	}
	raw := map[string]rawEntry{}
	for _, o := range objs {
		var e databaseEntry
		if err := c.readEntry(ctx, o, raw, &e); err != nil {
			if errors.Is(err, storage.ErrNotExist) {
				continue // dropped since the listing
			}
			return nil, err
		}
		dbs[strings.ToLower(e.Name)] = &database{entry: e, tables: map[string]*Table{}}
	}
	objs, err = c.warehouse.List(ctx, tablePrefix)
	if err != nil {
		return nil, fmt.Errorf("catalog: list tables: %w", err)
	}
	for _, o := range objs {
		var e TableEntry
		if err := c.readEntry(ctx, o, raw, &e); err != nil {
			if errors.Is(err, storage.ErrNotExist) {
				continue
			}
			return nil, err
		}
		db, ok := dbs[strings.ToLower(e.Database)]
		if !ok {
			continue // left behind by an interrupted DROP DATABASE
		}
		t := old[o.Key]
		if t == nil || t.Entry.Location != e.Location || t.Entry.Attached != e.Attached || t.Entry.ReadOnly != e.ReadOnly || t.Entry.Created != e.Created {
			if t, err = c.openTable(e); err != nil {
				return nil, err
			}
		}
		db.tables[strings.ToLower(e.Name)] = t
	}
	c.raw = raw
	return dbs, nil
}

// readEntry decodes the entry o lists, from the bytes read last time if it is unchanged,
// and keeps its bytes in raw.
func (c *Catalog) readEntry(ctx context.Context, o storage.ObjectInfo, raw map[string]rawEntry, v any) error {
	r, ok := c.raw[o.Key]
	if !ok || !r.settled || r.info.Size != o.Size || !r.info.ModTime.Equal(o.ModTime) {
		settled := time.Since(o.ModTime) > 2*time.Second
		b, err := c.warehouse.Get(ctx, o.Key)
		if err != nil {
			return fmt.Errorf("catalog: read %s: %w", o.Key, err)
		}
		r = rawEntry{info: o, data: b, settled: settled}
	}
	if err := json.Unmarshal(r.data, v); err != nil {
		return fmt.Errorf("catalog: %s is corrupt: %w", o.Key, err)
	}
	raw[o.Key] = r
	return nil
}

// MarkStale tells the catalog that another node changed it; the next lookup reads it again.
func (c *Catalog) MarkStale() { c.stale.Store(true) }

// Refresh reads the catalog again from the warehouse.
func (c *Catalog) Refresh(ctx context.Context) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	c.stale.Store(false)
	for attempt := 0; ; attempt++ {
		c.mu.RLock()
		gen := c.gen
		c.mu.RUnlock()
		dbs, err := c.load(ctx)
		if err != nil {
			c.stale.Store(true)
			return err
		}
		c.mu.Lock()
		if c.gen == gen || attempt == 4 {
			c.dbs = dbs
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock() // a local change happened meanwhile: the listing may predate it
	}
}

// fresh refreshes a catalog marked stale, or (miss) one that lacks a name a lookup wanted:
// another node may have just made it. A refresh that fails leaves the current view.
func (c *Catalog) fresh(miss bool) {
	if !miss && !c.stale.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = c.Refresh(ctx)
}

// announce tells the other nodes of a change that succeeded (*err == nil), after c.mu is
// released: the announcement is a Raft round trip, which must not hold up lookups.
func (c *Catalog) announce(ctx context.Context, err *error) {
	if *err == nil && c.opts.changed != nil {
		_ = c.opts.changed(ctx)
	}
}

func (c *Catalog) openTable(e TableEntry) (*Table, error) {
	var st storage.Store
	if e.Attached {
		s, err := c.openURL(e.Location)
		if err != nil {
			return nil, fmt.Errorf("catalog: open %s.%s at %s: %w", e.Database, e.Name, e.Location, err)
		}
		st = s
	} else {
		st = storage.Sub(c.warehouse, e.Location)
	}
	if c.opts.wrap != nil {
		st = c.opts.wrap(st)
	}
	return &Table{Entry: e, Store: st, Log: txlog.NewLog(st)}, nil
}

func dbKey(name string) string { return dbPrefix + url.PathEscape(strings.ToLower(name)) + ".json" }

func tableKey(db, name string) string {
	return tablePrefix + url.PathEscape(strings.ToLower(db)) + "/" + url.PathEscape(strings.ToLower(name)) + ".json"
}

// dbLocked returns the database named name (any case); c.mu must be held.
func (c *Catalog) dbLocked(name string) (*database, error) {
	d, ok := c.dbs[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrDatabaseNotFound, name)
	}
	return d, nil
}

// table returns the table named name (any case); db is the name as the caller spelled it.
func (d *database) table(db, name string) (*Table, error) {
	t, ok := d.tables[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("%w: %s.%s", ErrTableNotFound, db, name)
	}
	return t, nil
}

// Databases returns the database names, sorted.
func (c *Catalog) Databases() []string {
	c.fresh(false)
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.dbs))
	for _, d := range c.dbs {
		names = append(names, d.entry.Name)
	}
	sort.Strings(names)
	return names
}

// Database returns the database's canonical name.
func (c *Catalog) Database(name string) (string, bool) {
	c.fresh(false)
	for miss := false; ; miss = true {
		c.mu.RLock()
		d, ok := c.dbs[strings.ToLower(name)]
		c.mu.RUnlock()
		if ok {
			return d.entry.Name, true
		}
		if miss {
			return "", false
		}
		c.fresh(true)
	}
}

// CreateDatabase records a new, empty database.
func (c *Catalog) CreateDatabase(ctx context.Context, name string) (err error) {
	defer c.announce(ctx, &err)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.dbs[strings.ToLower(name)]; ok {
		return fmt.Errorf("%w: %s", ErrDatabaseExists, name)
	}
	e := databaseEntry{Name: name, Created: time.Now().UnixMilli()}
	b, _ := json.Marshal(e)
	// If absent: another node may have made the same database a moment ago.
	if err := c.warehouse.PutIfAbsent(ctx, dbKey(name), b); errors.Is(err, storage.ErrExist) {
		return fmt.Errorf("%w: %s", ErrDatabaseExists, name)
	} else if err != nil {
		return fmt.Errorf("catalog: create database %s: %w", name, err)
	}
	c.dbs[strings.ToLower(name)] = &database{entry: e, tables: map[string]*Table{}}
	c.gen++
	return nil
}

// DropDatabase drops every table of the database (deleting managed tables' files) and then
// the database itself.
func (c *Catalog) DropDatabase(ctx context.Context, name string) (err error) {
	defer c.announce(ctx, &err)
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.dbLocked(name)
	if err != nil {
		return err
	}
	for _, t := range d.tables {
		if err := c.dropTableLocked(ctx, d, t); err != nil {
			return err
		}
	}
	if err := c.warehouse.Delete(ctx, dbKey(name)); err != nil {
		return fmt.Errorf("catalog: drop database %s: %w", name, err)
	}
	delete(c.dbs, strings.ToLower(name))
	c.gen++
	return nil
}

// Tables returns the database's tables sorted by name.
func (c *Catalog) Tables(db string) ([]*Table, error) {
	c.fresh(false)
	c.mu.RLock()
	defer c.mu.RUnlock()
	d, err := c.dbLocked(db)
	if err != nil {
		return nil, err
	}
	out := make([]*Table, 0, len(d.tables))
	for _, t := range d.tables {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Entry.Name < out[j].Entry.Name })
	return out, nil
}

// Table returns one table.
func (c *Catalog) Table(db, name string) (*Table, error) {
	c.fresh(false)
	t, err := c.table(db, name)
	if err != nil {
		c.fresh(true)
		t, err = c.table(db, name)
	}
	return t, err
}

func (c *Catalog) table(db, name string) (*Table, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	d, err := c.dbLocked(db)
	if err != nil {
		return nil, err
	}
	return d.table(db, name)
}

// CreateTable registers a managed table and runs create (which writes version 0 of its log)
// before the entry is made durable, so a crash in between leaves at worst an unreferenced
// folder, never an entry without a log.
func (c *Catalog) CreateTable(ctx context.Context, db, name string, create func(*Table) error) (*Table, error) {
	return c.addTable(ctx, db, name, "", false, create)
}

// addTable registers db.name at location (managed: "" picks a free folder), after prepare
// has made or checked the table's log. The entry is written last, so a failure or a crash
// before it leaves no entry without a log.
func (c *Catalog) addTable(ctx context.Context, db, name, location string, readOnly bool, prepare func(*Table) error) (_ *Table, err error) {
	defer c.announce(ctx, &err)
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.dbLocked(db)
	if err != nil {
		return nil, err
	}
	if _, ok := d.tables[strings.ToLower(name)]; ok {
		return nil, fmt.Errorf("%w: %s.%s", ErrTableExists, db, name)
	}
	e := TableEntry{Database: d.entry.Name, Name: name, Location: location, Attached: location != "", ReadOnly: readOnly, Created: time.Now().UnixMilli()}
	if !e.Attached {
		loc, err := c.freeLocation(ctx, d.entry.Name, name)
		if err != nil {
			return nil, err
		}
		e.Location = loc
	}
	t, err := c.openTable(e)
	if err != nil {
		return nil, err
	}
	if err := prepare(t); err != nil {
		return nil, err
	}
	if err := c.putEntry(ctx, e); err != nil {
		return nil, err
	}
	d.tables[strings.ToLower(name)] = t
	c.gen++
	return t, nil
}

// freeLocation picks <db>/<table>, or a suffixed name when that folder already holds a log
// (a renamed table keeps its folder, so its old name may be taken).
func (c *Catalog) freeLocation(ctx context.Context, db, name string) (string, error) {
	base := pathSegment(db) + "/" + pathSegment(name)
	for i := 0; ; i++ {
		loc := base
		if i > 0 {
			loc = fmt.Sprintf("%s-%d", base, i)
		}
		objs, err := c.warehouse.List(ctx, loc+"/_delta_log/")
		if err != nil {
			return "", fmt.Errorf("catalog: check location %s: %w", loc, err)
		}
		if len(objs) == 0 && !c.locationUsed(loc) {
			return loc, nil
		}
	}
}

func (c *Catalog) locationUsed(loc string) bool {
	for _, d := range c.dbs {
		for _, t := range d.tables {
			if !t.Entry.Attached && t.Entry.Location == loc {
				return true
			}
		}
	}
	return false
}

// pathSegment keeps names readable on disk while never producing "/", "..", or a leading
// "_" (Delta readers skip _-prefixed folders).
func pathSegment(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '$':
			b.WriteRune(r)
		case r == '_' && b.Len() > 0:
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "%%%02x", r)
		}
	}
	return b.String()
}

// putEntry records a new name; if another node took the name meanwhile, the table exists.
func (c *Catalog) putEntry(ctx context.Context, e TableEntry) error {
	b, _ := json.Marshal(e)
	err := c.warehouse.PutIfAbsent(ctx, tableKey(e.Database, e.Name), b)
	if errors.Is(err, storage.ErrExist) {
		return fmt.Errorf("%w: %s.%s", ErrTableExists, e.Database, e.Name)
	}
	if err != nil {
		return fmt.Errorf("catalog: record table %s.%s: %w", e.Database, e.Name, err)
	}
	return nil
}

// Attach registers an existing Delta table at url under db.name, read-only if asked. check
// validates the table (its log must open) before the entry is written.
func (c *Catalog) Attach(ctx context.Context, db, name, location string, readOnly bool, check func(*Table) error) (*Table, error) {
	if location == "" {
		return nil, fmt.Errorf("catalog: attach %s.%s: no location", db, name)
	}
	return c.addTable(ctx, db, name, location, readOnly, check)
}

// DropTable forgets the table; a managed table's files are deleted, an attached table's stay.
func (c *Catalog) DropTable(ctx context.Context, db, name string) (err error) {
	defer c.announce(ctx, &err)
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.dbLocked(db)
	if err != nil {
		return err
	}
	t, err := d.table(db, name)
	if err != nil {
		return err
	}
	return c.dropTableLocked(ctx, d, t)
}

// dropTableLocked deletes the entry first: once it is gone the table is gone, and a crash
// while deleting files leaves only unreferenced files.
func (c *Catalog) dropTableLocked(ctx context.Context, d *database, t *Table) error {
	if err := c.warehouse.Delete(ctx, tableKey(t.Entry.Database, t.Entry.Name)); err != nil {
		return fmt.Errorf("catalog: drop table %s.%s: %w", t.Entry.Database, t.Entry.Name, err)
	}
	delete(d.tables, strings.ToLower(t.Entry.Name))
	c.gen++
	if t.Entry.Attached {
		return nil
	}
	objs, err := t.Store.List(ctx, "")
	if err != nil {
		return fmt.Errorf("catalog: list files of dropped table %s.%s: %w", t.Entry.Database, t.Entry.Name, err)
	}
	// The entry is already gone, so no reader sees a half-deleted folder; a crash here
	// leaves only unreferenced files.
	for _, o := range objs {
		if err := t.Store.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("catalog: delete %s of dropped table %s.%s: %w", o.Key, t.Entry.Database, t.Entry.Name, err)
		}
	}
	if c.opts.dropped != nil {
		if err := c.opts.dropped(ctx, t.Store.URL()); err != nil {
			return fmt.Errorf("catalog: dropped table %s.%s: %w", t.Entry.Database, t.Entry.Name, err)
		}
	}
	return nil
}

// RenameTable moves a table to a new name (and possibly another database). The files stay
// where they are; only the entry changes.
func (c *Catalog) RenameTable(ctx context.Context, db, oldName, newDB, newName string) (err error) {
	defer c.announce(ctx, &err)
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.dbLocked(db)
	if err != nil {
		return err
	}
	nd, err := c.dbLocked(newDB)
	if err != nil {
		return err
	}
	t, err := d.table(db, oldName)
	if err != nil {
		return err
	}
	if _, ok := nd.tables[strings.ToLower(newName)]; ok {
		return fmt.Errorf("%w: %s.%s", ErrTableExists, newDB, newName)
	}
	e := t.Entry
	e.Database, e.Name = nd.entry.Name, newName
	// New entry first: a crash between the two writes leaves the table under both names,
	// never under none.
	if err := c.putEntry(ctx, e); err != nil {
		return err
	}
	if err := c.warehouse.Delete(ctx, tableKey(t.Entry.Database, t.Entry.Name)); err != nil {
		return fmt.Errorf("catalog: rename %s.%s: %w", db, oldName, err)
	}
	delete(d.tables, strings.ToLower(oldName))
	nd.tables[strings.ToLower(newName)] = &Table{Entry: e, Store: t.Store, Log: t.Log}
	c.gen++
	return nil
}
