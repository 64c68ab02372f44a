package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"

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
	table := r.Store.URL()
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
			return fmt.Errorf("%w: %v", storage.ErrExist, err)
		case errors.Is(err, ErrGap) && attempt == 0:
			continue
		}
		return err
	}
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
