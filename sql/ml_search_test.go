package sql

import (
	"context"
	"strconv"
	"testing"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"

	"github.com/lakehoused/lakehoused/catalog"
	"github.com/lakehoused/lakehoused/ml/search"
	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

func testEngine(t *testing.T) *Engine {
	t.Helper()
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(context.Background(), store, storage.Open)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(Config{Catalog: cat, Committer: txlog.NewStorageCommitter(), OpenURL: storage.Open, Warehouse: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// trialRow reads (state, lease_expires, error) of a trial.
func trialRow(t *testing.T, e *Engine, study string, trial int) (string, time.Time, any) {
	t.Helper()
	_, rows, err := e.Query(context.Background(), "", "SELECT state, lease_expires, error FROM ml.trials WHERE study = "+sqlString(study)+" AND trial = "+strconv.Itoa(trial))
	if err != nil || len(rows) != 1 {
		t.Fatalf("trial %d of %s: %v %v", trial, study, rows, err)
	}
	lease, _ := rows[0][1].(time.Time)
	return rows[0][0].(string), lease, rows[0][2]
}

// TestTrialLeases: a RUNNING trial's lease moves forward with each heartbeat and is cleared
// when the trial finishes; a study opened again after its worker stopped heartbeating takes
// the expired trial back (FAILED, its parameters queued) and numbers new trials after it.
func TestTrialLeases(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	if err := e.ensureML(); err != nil {
		t.Fatal(err)
	}
	newStore := func() *tableStore {
		s := &tableStore{e: e, study: "s", worker: "w1"}
		err := e.mlAutocommit(ctx, func(ictx *gms.Context) error {
			var err error
			if s.exp, err = e.mlModelExperiment(ictx, "s"); err != nil {
				return err
			}
			s.parent, _, err = e.mlStartChildRun(ictx, s.exp, "study", "")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.open(ctx); err != nil {
			t.Fatal(err)
		}
		s.startWriter()
		t.Cleanup(func() { _ = s.stopWriter() })
		return s
	}
	s := newStore()
	params := map[string]any{"algorithm": "knn", "knn.n_neighbors": 3}
	for range 2 {
		if _, err := s.Create(ctx, params, "w1"); err != nil {
			t.Fatal(err)
		}
	}
	// Create and Finish do not wait for their writes; the writer commits in order, so a
	// heartbeat (which waits) returns after them.
	if err := s.heartbeat(); err != nil {
		t.Fatal(err)
	}
	state, lease0, _ := trialRow(t, e, "s", 0)
	if state != "RUNNING" || time.Until(lease0) < trialLease-5*time.Second {
		t.Fatalf("new trial: %s, lease until %v", state, lease0)
	}
	time.Sleep(20 * time.Millisecond)
	if err := s.heartbeat(); err != nil {
		t.Fatal(err)
	}
	if _, lease1, _ := trialRow(t, e, "s", 0); !lease1.After(lease0) {
		t.Fatalf("heartbeat did not renew the lease: %v then %v", lease0, lease1)
	}
	if err := s.Finish(ctx, 0, search.Complete, 0.9, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.heartbeat(); err != nil {
		t.Fatal(err)
	}
	if state, lease, _ := trialRow(t, e, "s", 0); state != "COMPLETE" || !lease.IsZero() {
		t.Fatalf("finished trial: %s, lease %v", state, lease)
	}

	// Trial 1 is left RUNNING and its lease runs out: the next search takes it back.
	if _, _, err := e.Query(ctx, "", "UPDATE ml.trials SET lease_expires = '2020-01-01 00:00:00' WHERE study = 's' AND trial = 1"); err != nil {
		t.Fatal(err)
	}
	s2 := newStore()
	if s2.base != 2 || len(s2.requeued) != 1 || s2.requeued[0]["algorithm"] != "knn" || s2.requeued[0]["knn.n_neighbors"] != float64(3) {
		t.Fatalf("reopened study: base %d, requeued %v", s2.base, s2.requeued)
	}
	if state, _, msg := trialRow(t, e, "s", 1); state != "FAILED" || msg != "lease expired: worker w1 stopped renewing it; its parameters run again as trial 2" {
		t.Fatalf("expired trial: %s %v", state, msg)
	}
	if n, err := s2.Create(ctx, s2.requeued[0], "w1"); err != nil || n != 0 {
		t.Fatalf("Create: %d %v", n, err)
	}
	if err := s2.heartbeat(); err != nil {
		t.Fatal(err)
	}
	if state, _, _ := trialRow(t, e, "s", 2); state != "RUNNING" {
		t.Fatalf("trial 2: %s", state)
	}
}
