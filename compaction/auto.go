package compaction

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lakehoused/lakehoused/txlog"
)

// DefaultAutoTrigger is how many small files (under half the target size) one partition
// may collect before auto-compaction compacts it, Delta's autoCompact.minNumFiles.
const DefaultAutoTrigger = 50

// Auto is a Committer that compacts tables in the background: after a commit that adds
// files, if a partition of the table holds at least Trigger files smaller than half the
// target size, a job bin-packs them. It never blocks or fails the commit that triggered
// it: the check and the compaction run on their own goroutine, one per table at a time,
// and a compaction that conflicts with a user's write backs off and tries again after a
// later commit. Tables opt out with delta.autoOptimize.autoCompact=false.
type Auto struct {
	// Committer commits everything, the compactions included.
	txlog.Committer
	Jobs *Jobs
	// Name gives a table's name for job reports; default its URL.
	Name    func(*txlog.Log) string
	Logger  *slog.Logger
	Trigger int // default DefaultAutoTrigger
	// IdleTrigger and IdleDelay: default DefaultIdleTrigger, DefaultIdleDelay.
	IdleTrigger int
	IdleDelay   time.Duration
	// Lead, if set, says whether this node leads its cluster: only the leader compacts
	// (it is told of every table's commits, from every node, through Notify), so the
	// work runs once and moves with leadership. Nil: this node compacts what it commits.
	Lead func() bool

	mu      sync.Mutex
	tables  map[*txlog.Log]*autoState
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
	stopped bool
	runs    int64 // compactions committed, for tests and metrics
}

type autoState struct {
	running bool
	dirty   bool // a commit arrived while running: check again
	idle    bool // the next check is the idle one (lower trigger)
	backoff time.Duration
	retryAt time.Time   // no new attempt before this after a conflict
	timer   *time.Timer // fires IdleDelay after the table's last commit
}

// DefaultIdleTrigger and DefaultIdleDelay: once a table has had no commit for the delay, a
// partition with this many small files is compacted too, so a stream that stops does not
// leave up to 49 small files behind until the next one.
const (
	DefaultIdleTrigger = 8
	DefaultIdleDelay   = time.Second
)

// NewAuto wraps c.
func NewAuto(c txlog.Committer, jobs *Jobs, logger *slog.Logger) *Auto {
	ctx, cancel := context.WithCancel(context.Background())
	if logger == nil {
		logger = slog.Default()
	}
	return &Auto{Committer: c, Jobs: jobs, Logger: logger, ctx: ctx, cancel: cancel, tables: map[*txlog.Log]*autoState{}}
}

// Commit implements txlog.Committer.
func (a *Auto) Commit(ctx context.Context, log *txlog.Log, readVersion int64, actions []txlog.Action, opts ...txlog.CommitOption) (int64, error) {
	v, err := a.Committer.Commit(ctx, log, readVersion, actions, opts...)
	if err == nil && readVersion >= 0 && addsFiles(actions) && (a.Lead == nil || a.Lead()) {
		a.notify(log)
	}
	return v, err
}

// Notify tells the leader of a commit to the table, made on any node.
func (a *Auto) Notify(log *txlog.Log) { a.notify(log) }

func addsFiles(actions []txlog.Action) bool {
	for _, act := range actions {
		if act.Add != nil {
			return true
		}
	}
	return false
}

// Runs returns how many auto-compactions have committed.
func (a *Auto) Runs() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runs
}

// Close stops background compactions (a running one is cancelled, and the files it wrote
// are deleted) and waits for them.
func (a *Auto) Close() {
	a.mu.Lock()
	a.stopped = true
	for _, st := range a.tables {
		if st.timer != nil {
			st.timer.Stop()
		}
	}
	a.mu.Unlock()
	a.cancel()
	a.wg.Wait()
}

// notify is called after each commit that added files: check now, and once more when the
// table has been quiet for IdleDelay.
func (a *Auto) notify(log *txlog.Log) {
	a.mu.Lock()
	if !a.stopped {
		st := a.state(log)
		delay := a.IdleDelay
		if delay <= 0 {
			delay = DefaultIdleDelay
		}
		if st.timer == nil {
			st.timer = time.AfterFunc(delay, func() { a.wake(log, true) })
		} else {
			st.timer.Reset(delay)
		}
	}
	a.mu.Unlock()
	a.wake(log, false)
}

func (a *Auto) state(log *txlog.Log) *autoState {
	st := a.tables[log]
	if st == nil {
		st = &autoState{}
		a.tables[log] = st
	}
	return st
}

// wake starts a check of the table unless one is running (which then checks again).
func (a *Auto) wake(log *txlog.Log, idle bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	if a.Lead != nil && !a.Lead() {
		return // leadership moved: the new leader compacts
	}
	st := a.state(log)
	if st.running {
		st.dirty = true
		st.idle = st.idle || idle
		return
	}
	if time.Now().Before(st.retryAt) {
		if idle && st.timer != nil {
			st.timer.Reset(time.Until(st.retryAt)) // the idle check still runs, after the backoff
		}
		return
	}
	st.running = true
	st.idle = idle
	a.wg.Add(1)
	go a.loop(log, st)
}

// loop checks the table, compacts it if needed, and checks again while commits keep
// arriving during the compaction.
func (a *Auto) loop(log *txlog.Log, st *autoState) {
	defer a.wg.Done()
	for {
		a.mu.Lock()
		idle := st.idle
		st.idle = false
		a.mu.Unlock()
		err := a.check(log, idle)
		a.mu.Lock()
		switch {
		case err == nil:
			st.backoff = 0
		case errors.Is(err, txlog.ErrConflict):
			// A user's write removed files we were compacting: let writes win, try later.
			st.backoff = min(max(2*st.backoff, 200*time.Millisecond), 30*time.Second)
			st.retryAt = time.Now().Add(st.backoff)
			st.dirty = false
		default:
			if a.ctx.Err() == nil {
				a.Logger.Warn("auto-compaction failed; the table is unchanged", "table", a.name(log), "err", err)
			}
			st.backoff = min(max(2*st.backoff, time.Second), 5*time.Minute)
			st.retryAt = time.Now().Add(st.backoff)
			st.dirty = false
		}
		if err != nil && st.timer != nil && !a.stopped {
			st.timer.Reset(st.backoff) // once writes pause, the idle check tries again
		}
		if !st.dirty || a.stopped {
			st.running = false
			if idle && err == nil && !st.idle {
				// The table has been quiet since its last commit and is compacted: forget it
				// (a dropped table's Log is not kept alive); its next commit starts afresh.
				if st.timer != nil {
					st.timer.Stop()
				}
				delete(a.tables, log)
			}
			a.mu.Unlock()
			return
		}
		st.dirty = false
		a.mu.Unlock()
	}
}

func (a *Auto) name(log *txlog.Log) string {
	if a.Name != nil {
		if n := a.Name(log); n != "" {
			return n
		}
	}
	return log.Store().URL()
}

// check compacts the table if one of its partitions has reached the trigger (the idle
// trigger when the table has been quiet).
func (a *Auto) check(log *txlog.Log, idle bool) error {
	snap, err := log.Snapshot(a.ctx, -1)
	if err != nil {
		return err
	}
	if !AutoCompactEnabled(snap.Metadata.Configuration) || snap.Protocol.CheckWrite() != nil {
		return nil
	}
	o := Options{}
	o.defaults(snap)
	trigger := a.Trigger
	if trigger <= 0 {
		trigger = DefaultAutoTrigger
	}
	if idle {
		trigger = a.IdleTrigger
		if trigger <= 0 {
			trigger = DefaultIdleTrigger
		}
	}
	small := o.TargetSize / 2
	due := false
	for _, p := range partitionsOf(snap, nil) {
		n := 0
		for _, f := range p.files {
			if f.Size < small && f.DeletionVector == nil {
				n++
			}
		}
		if n >= trigger {
			due = true
			break
		}
	}
	if !due {
		return nil
	}
	name := a.name(log)
	job := a.Jobs.Start("auto-compaction", name, 0)
	res, err := Optimize(a.ctx, Table{Name: name, Store: log.Store(), Log: log, Committer: a.Committer}, Options{
		TargetSize: o.TargetSize, SmallBelow: small, MinFiles: trigger, Auto: true, Tiered: true, Job: job, Attempts: 3,
	})
	job.End(err)
	if err == nil && res.Version >= 0 {
		a.mu.Lock()
		a.runs++
		a.mu.Unlock()
		a.Logger.Debug("auto-compaction", "table", name, "version", res.Version, "files_removed", res.FilesRemoved, "files_added", res.FilesAdded)
	}
	return err
}

// AutoCompactEnabled reads delta.autoOptimize.autoCompact: on unless set to false.
func AutoCompactEnabled(conf map[string]string) bool {
	v, ok := conf["delta.autoOptimize.autoCompact"]
	return !ok || !strings.EqualFold(strings.TrimSpace(v), "false")
}
