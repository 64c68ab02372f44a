package sql

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/lakehoused/lakehoused/catalog"
	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// Group commit: transactions that only insert into a table and commit at the same time are
// written as one data file and one Delta commit. The first committer becomes the leader and
// commits everything queued; whoever queued meanwhile is committed by the next leader, which
// is the first of them (leadership passes on after each batch, so no client waits on others'
// work for long). Each transaction still gets its OK only once the shared commit is durable,
// and one that fails (a duplicate key) is left out without failing the others.
//
// Under concurrent autocommit inserts this turns N data files, N commit files and their
// fsyncs into one of each, which is what bounds insert latency and keeps tables from
// filling with tiny files.

// maxRebases bounds how often a keyed batch is re-checked and re-committed over concurrent
// commits before its clients get a serialization error to retry.
const maxRebases = 50

type groupCommitter struct {
	mu      sync.Mutex
	queue   []*groupRequest
	leading bool
}

type groupRequest struct {
	ctx     *gms.Context
	w       *tableWrites
	done    chan error
	promote chan struct{}
}

// answer delivers the outcome of r's commit; only the first answer counts.
func (r *groupRequest) answer(err error) {
	select {
	case r.done <- err:
	default:
	}
}

func (e *Engine) groupFor(ct *catalog.Table) *groupCommitter {
	e.groupsMu.Lock()
	defer e.groupsMu.Unlock()
	g, ok := e.groups[ct]
	if !ok {
		g = &groupCommitter{}
		e.groups[ct] = g
	}
	return g
}

// groupCommit commits an insert-only w, possibly together with other transactions.
func (e *Engine) groupCommit(ctx *gms.Context, w *tableWrites) error {
	req := &groupRequest{ctx: ctx, w: w, done: make(chan error, 1), promote: make(chan struct{}, 1)}
	if ctx.Value(atomicKey{}) != nil {
		e.commitBatch([]*groupRequest{req})
		return <-req.done
	}
	g := e.groupFor(w.table)
	g.mu.Lock()
	g.queue = append(g.queue, req)
	if g.leading {
		g.mu.Unlock()
		select {
		case err := <-req.done:
			return err
		case <-req.promote:
		}
	} else {
		g.leading = true
		g.mu.Unlock()
	}
	// Leader: commit what is queued (this request included), then hand over.
	g.mu.Lock()
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()
	e.commitBatch(batch)
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.leading = false
	} else {
		g.queue[0].promote <- struct{}{}
	}
	g.mu.Unlock()
	return <-req.done
}

// commitBatch writes the batch's rows into one set of files and commits them on top of the
// table's latest version. Keyed tables check every key against that version and across the
// batch first.
func (e *Engine) commitBatch(batch []*groupRequest) {
	lead := batch[0]
	ctx := context.WithoutCancel(lead.ctx) // one client going away must not fail the others
	ct := lead.w.table
	fail := func(rs []*groupRequest, err error) {
		for _, r := range rs {
			r.answer(err)
		}
	}
	latest, err := ct.Log.Snapshot(ctx, -1)
	if err != nil {
		fail(batch, tableError(ct, err))
		return
	}
	accepted, err := e.admit(lead.ctx, latest, batch)
	if err != nil {
		fail(batch, err)
		return
	}
	if len(accepted) == 0 {
		return
	}
	rows := 0
	ws := make([]*tableWrites, len(accepted))
	var spilled []*txlog.Add
	for i, r := range accepted {
		ws[i] = r.w
		rows += r.w.liveInserts() + int(r.w.spilledRows)
		spilled = append(spilled, r.w.spilled...)
	}
	sealed, err := sealInserts(ctx, ct.Store, latest, ws...)
	if err != nil {
		deleteFiles(ct.Store, spilled)
		fail(accepted, fmt.Errorf("table %s.%s: write: %w", ct.Entry.Database, ct.Entry.Name, err))
		return
	}
	adds := append(spilled, sealed.Adds...)
	// The data files are stored while the commit file is staged (AfterDataDurable); a
	// rebased retry finds them stored.
	var stored sync.Once
	var storeErr error
	storeData := txlog.AfterDataDurable(func() error {
		stored.Do(func() { storeErr = sealed.Put(ctx) })
		if storeErr != nil {
			return fmt.Errorf("table %s.%s: write: %w", ct.Entry.Database, ct.Entry.Name, storeErr)
		}
		return nil
	})
	keyed := len(lead.w.pk) > 0
	blind := !keyed
	info := &txlog.CommitInfo{
		Timestamp:           time.Now().UnixMilli(),
		Operation:           "WRITE",
		OperationParameters: map[string]any{"mode": "Append"},
		IsBlindAppend:       &blind,
		UserName:            lead.ctx.Client().User,
		OperationMetrics: map[string]string{
			"numOutputRows":     strconv.Itoa(rows),
			"numAddedFiles":     strconv.Itoa(len(adds)),
			"numTransactions":   strconv.Itoa(len(accepted)),
			"numDeletedRows":    "0",
			"numRemovedFiles":   "0",
			"numOutputBytes":    strconv.FormatInt(totalSize(adds), 10),
			"groupCommitLeader": strconv.FormatUint(uint64(lead.ctx.Session.ID()), 10),
		},
	}
	actions := []txlog.Action{{CommitInfo: info}}
	for _, a := range adds {
		actions = append(actions, txlog.Action{Add: a})
	}
	readVersion := latest.Version
	for attempt := 0; ; attempt++ {
		v, err := e.cfg.Committer.Commit(ctx, ct.Log, readVersion, actions, storeData)
		if err == nil {
			e.commits.Add(1)
			e.noteInserted(ct, v, actions, ws)
			fail(accepted, nil)
			return
		}
		// A keyed batch read the key index, so a concurrent commit conflicts with it: check
		// the keys again against the newer version and commit on top of it.
		if errors.Is(err, txlog.ErrConflict) && keyed && attempt < maxRebases {
			if newer, lerr := ct.Log.Snapshot(ctx, -1); lerr == nil && newer.Metadata.SchemaString == latest.Metadata.SchemaString {
				if again, aerr := e.admit(lead.ctx, newer, accepted); aerr == nil && len(again) == len(accepted) {
					readVersion = newer.Version
					rv := readVersion
					info.ReadVersion = &rv
					continue
				}
			}
			err = mysql.NewSQLError(mysql.ERLockDeadlock, mysql.SSLockDeadlock,
				"table %s.%s: rows were committed concurrently; retry the transaction", ct.Entry.Database, ct.Entry.Name)
		}
		if !errors.Is(err, storage.ErrOutcomeUnknown) {
			sealed.Abort(ctx) // the commit is not in the log: its files must go
			deleteFiles(ct.Store, spilled)
		}
		if _, ok := err.(*mysql.SQLError); !ok {
			err = tableError(ct, err)
		}
		fail(accepted, err)
		return
	}
}

// admit returns the requests that can be committed on top of latest. A request whose table
// changed shape since it read it gets a serialization error; on keyed tables one with a key
// already in latest, or in an earlier request of the batch, gets 1062. Rejected requests are
// answered here.
func (e *Engine) admit(ctx *gms.Context, latest *txlog.Snapshot, batch []*groupRequest) ([]*groupRequest, error) {
	ct := batch[0].w.table
	var ki *keyIndex
	taken := map[string]bool{}
	var accepted []*groupRequest
	for _, r := range batch {
		w := r.w
		if w.snap.Metadata.SchemaString != latest.Metadata.SchemaString ||
			!equalStrings(w.snap.Metadata.PartitionColumns, latest.Metadata.PartitionColumns) {
			r.answer(mysql.NewSQLError(mysql.ERLockDeadlock, mysql.SSLockDeadlock,
				"table %s.%s changed while the transaction ran; retry it", ct.Entry.Database, ct.Entry.Name))
			continue
		}
		if len(w.pk) == 0 {
			accepted = append(accepted, r)
			continue
		}
		if ki == nil {
			sch, err := gmsColumns(ctx, ct.Entry.Name, latest.Schema, primaryKeyColumns(latest))
			if err != nil {
				return nil, err
			}
			ki, err = e.keyIndexAt(ctx, &Table{ct: ct, snap: latest, schema: sch, pkCols: primaryKeyColumns(latest)})
			if err != nil {
				return nil, err
			}
		}
		dup, err := duplicateKey(w, ki, taken)
		if err != nil {
			return nil, err
		}
		if dup != "" {
			r.answer(mysql.NewSQLError(mysql.ERDupEntry, "23000", "Duplicate entry '%s' for key '%s.PRIMARY' (committed concurrently)", dup, ct.Entry.Name))
			continue
		}
		if r != batch[len(batch)-1] { // the last one's keys need no checking against
			w.eachLiveKey(func(k string, _ int) bool {
				taken[k] = true
				return true
			})
		}
		accepted = append(accepted, r)
	}
	return accepted, nil
}

// duplicateKey returns the text of a live key of w that ki or taken already holds.
func duplicateKey(w *tableWrites, ki *keyIndex, taken map[string]bool) (string, error) {
	ki.mu.Lock()
	defer ki.mu.Unlock()
	if len(ki.keys) == 0 && len(taken) == 0 {
		return "", nil // an empty table (the first bulk load) has nothing to collide with
	}
	dup := -1
	w.eachLiveKey(func(k string, pos int) bool {
		if ki.has(k) || taken[k] {
			dup = pos
			return false
		}
		return true
	})
	if dup < 0 {
		return "", nil
	}
	r, err := w.ins.row(dup)
	if err != nil {
		return "", err
	}
	return keyText(r, w.pk), nil
}

func totalSize(adds []*txlog.Add) int64 {
	var n int64
	for _, a := range adds {
		n += a.Size
	}
	return n
}
