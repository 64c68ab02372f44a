package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/lakehoused/lakehoused/storage"
)

// A transaction that writes several tables commits each table through txlog as usual, one
// goroutine per table, with a context made by Atomic. Each table's put-if-absent of its
// commit file then waits for the others' instead of being ratified alone; once every table
// has proposed, all the commits go to the leader in one ratify command, which takes all or
// none. The outcome is handed back to every table's committer in the terms it knows: a
// table whose version was taken sees storage.ErrExist and checks the winner for conflicts
// as usual; the others see storage.ErrExist too, find no new commit, and propose the same
// version again in the next round. A table that fails (a real conflict, a failed data
// write) aborts the batch, and no table commits.

type batchKey struct{}

// batch gathers one proposal per table per round.
type batch struct {
	n       *Node
	mu      sync.Mutex
	active  int // tables still committing
	round   []*proposal
	aborted error
}

type proposal struct {
	commit Commit
	result chan error
}

// Atomic returns a context under which the commits of tables tables (made concurrently,
// through stores this node wrapped) are ratified together, all or none, and a function
// each table's committer calls when it is done, with its error (nil on success, or when
// it had nothing to commit). An error aborts the others.
func (n *Node) Atomic(ctx context.Context, tables int) (context.Context, func(error)) {
	b := &batch{n: n, active: tables}
	return context.WithValue(ctx, batchKey{}, b), b.leave
}

func batchFrom(ctx context.Context, n *Node) *batch {
	b, _ := ctx.Value(batchKey{}).(*batch)
	if b == nil || b.n != n {
		return nil
	}
	return b
}

// propose adds a table's commit to the round and waits for the round's outcome.
func (b *batch) propose(ctx context.Context, c Commit) error {
	p := &proposal{commit: c, result: make(chan error, 1)}
	b.mu.Lock()
	if b.aborted != nil {
		b.mu.Unlock()
		return b.aborted
	}
	b.round = append(b.round, p)
	b.fireLocked()
	b.mu.Unlock()
	select {
	case err := <-p.result:
		return err
	case <-ctx.Done():
		b.leave(ctx.Err())
		return ctx.Err()
	}
}

// leave ends a table's part: with an error, the batch is aborted.
func (b *batch) leave(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil && b.aborted == nil {
		b.aborted = fmt.Errorf("cluster: the transaction's other table failed: %w", err)
		for _, p := range b.round {
			p.result <- b.aborted
		}
		b.round = nil
	}
	b.active--
	b.fireLocked()
}

// fireLocked ratifies the round once every active table has proposed. b.mu is held.
func (b *batch) fireLocked() {
	if b.aborted != nil || len(b.round) == 0 || len(b.round) < b.active {
		return
	}
	round := b.round
	b.round = nil
	go b.ratify(round)
}

func (b *batch) ratify(round []*proposal) {
	commits := make([]Commit, len(round))
	for i, p := range round {
		commits[i] = p.commit
	}
	ctx := context.Background()
	err := b.n.Ratify(ctx, commits)
	var conflict string
	var taken *VersionTaken
	if errors.As(err, &taken) {
		conflict = taken.Table
	}
	for _, p := range round {
		switch {
		case err == nil:
			p.result <- nil
		case errors.Is(err, ErrConflict) && (conflict == "" || conflict == p.commit.Table):
			p.result <- fmt.Errorf("%w: %w", storage.ErrExist, err)
		case errors.Is(err, ErrConflict):
			// Not this table's version: propose it again, together with the others.
			p.result <- fmt.Errorf("%w: proposing again with the transaction's other tables", storage.ErrExist)
		default:
			p.result <- err
		}
	}
}
