package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lakehoused/lakehoused/storage"
	"github.com/lakehoused/lakehoused/txlog"
)

// Tables take part in the cluster through their store: Wrap returns a store whose
// put-if-absent of a commit file (_delta_log/<20 digits>.json, the Delta protocol's mutual
// exclusion) is ratified by the cluster instead, then published. Everything else, data files
// included, goes straight to storage. So txlog's committer, with its conflict checks and
// retries, works unchanged on top: losing the race for a version looks the same as a
// put-if-absent that found the file.

// Wrap returns s (a table's store) with its commits ratified by the cluster.
func (n *Node) Wrap(s storage.Store) storage.Store { return &ratifiedStore{Store: s, n: n} }

type ratifiedStore struct {
	storage.Store
	n *Node
}

func (r *ratifiedStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	v, ok := txlog.CommitVersion(key)
	if !ok {
		return r.Store.PutIfAbsent(ctx, key, data)
	}
	return r.ratify(ctx, key, v, data)
}

func (r *ratifiedStore) ratify(ctx context.Context, key string, v int64, data []byte) error {
	table := r.Store.URL()
	if b := batchFrom(ctx, r.n); b != nil {
		// One of a transaction's tables: ratified with the others, all or none. Base is
		// always given (a gap cannot be retried table by table).
		latest, err := txlog.LatestListed(ctx, r.Store)
		if err != nil {
			return err
		}
		err = b.propose(ctx, Commit{Table: table, Version: v, Data: data, Base: latest, Hash: hashOf(data)})
		if taken := (*VersionTaken)(nil); errors.As(err, &taken) {
			r.awaitPublished(ctx, key) // this table lost its version: read the winner next
		}
		return err
	}
	// Base (what storage holds) is needed when the cluster has not seen the table, or when
	// writers outside it have moved it on (the cluster then answers ErrGap).
	base := int64(-1)
	_, known := r.n.Known(table)
	for attempt := 0; ; attempt++ {
		if !known || attempt > 0 {
			latest, err := txlog.LatestListed(ctx, r.Store)
			if err != nil {
				return err
			}
			base = latest
		}
		err := r.n.Ratify(ctx, []Commit{{Table: table, Version: v, Data: data, Base: base}})
		switch {
		case errors.Is(err, ErrConflict):
			r.awaitPublished(ctx, key)
			return fmt.Errorf("%w: %v", storage.ErrExist, err)
		case errors.Is(err, ErrGap) && attempt == 0:
			continue
		}
		return err
	}
}

// awaitPublished waits (briefly) for the commit that won key to be published: the loser
// reads the winner from storage next, to check it for conflicts and commit after it, and
// a winner ratified but not yet written would send it round again at the same version.
func (r *ratifiedStore) awaitPublished(ctx context.Context, key string) {
	deadline := time.Now().Add(5 * time.Second)
	for wait := time.Millisecond; time.Now().Before(deadline); wait = min(2*wait, 50*time.Millisecond) {
		if _, err := r.Store.Stat(ctx, key); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Stage implements storage.Stager: a commit file is staged in the table's store while its
// data files are made durable, and ratified when published; if this node is the leader, it
// publishes the staged file itself, which saves writing it after ratification.
func (r *ratifiedStore) Stage(ctx context.Context, key string, data []byte) (storage.Staged, error) {
	v, ok := txlog.CommitVersion(key)
	if !ok {
		return storage.Stage(ctx, r.Store, key, data)
	}
	st, err := storage.Stage(ctx, r.Store, key, data)
	if err != nil {
		return nil, err
	}
	return &ratifiedStaged{r: r, staged: st, key: key, version: v, data: data}, nil
}

type ratifiedStaged struct {
	r       *ratifiedStore
	staged  storage.Staged
	key     string
	version int64
	data    []byte
}

func (s *ratifiedStaged) PublishIfAbsent(ctx context.Context, key string) error {
	if key != s.key {
		return fmt.Errorf("cluster: publish %s: staged as %s", key, s.key)
	}
	id := stagedID{s.r.Store.URL(), s.version, hashOf(s.data)}
	s.r.n.staged.Store(id, s.staged)
	defer s.r.n.staged.Delete(id)
	return s.r.ratify(ctx, key, s.version, s.data)
}

func (s *ratifiedStaged) Discard() { s.staged.Discard() }

// stagedID names a commit staged on this node, which its publication uses if this node
// leads.
type stagedID struct {
	table   string
	version int64
	hash    string
}

// publish writes a ratified commit: from the file staged for it on this node if there is
// one, else through Config.Publish.
func (n *Node) publish(ctx context.Context, c Commit) error {
	// Used once: a staged file is published at most once.
	if st, ok := n.staged.LoadAndDelete(stagedID{c.Table, c.Version, c.Hash}); ok {
		err := st.(storage.Staged).PublishIfAbsent(ctx, txlog.CommitKey(c.Version))
		if !errors.Is(err, storage.ErrExist) {
			return err
		}
		// Published by an earlier attempt, or taken outside: Publish tells which.
	}
	return n.cfg.Publish(ctx, c)
}

// PublishTo returns a Config.Publish that writes commit files into the stores open returns
// for table URLs. A file already there with the same bytes is a commit published before
// (by a leader that died before recording it); different bytes mean a writer outside the
// cluster took the version (ErrTakenOutside), and the ratification is voided.
func PublishTo(open func(ctx context.Context, url string) (storage.Store, error)) func(context.Context, Commit) error {
	return func(ctx context.Context, c Commit) error {
		s, err := open(ctx, c.Table)
		if err != nil {
			return err
		}
		key := txlog.CommitKey(c.Version)
		err = s.PutIfAbsent(ctx, key, c.Data)
		if !errors.Is(err, storage.ErrExist) {
			return err
		}
		have, gerr := s.Get(ctx, key)
		if gerr != nil {
			return fmt.Errorf("%w (and reading it back: %v)", err, gerr)
		}
		if !bytes.Equal(have, c.Data) {
			return fmt.Errorf("%w: %s %s", ErrTakenOutside, c.Table, key)
		}
		return nil
	}
}
