// Package txlog is the Delta Lake transaction log of one table: the actions of the log,
// their replay into a Snapshot, checkpoints, conflict checking, and committing new
// versions through a Committer.
//
// Replay and conflict checking are pure functions of actions; storage is reached only
// through the storage.Store a Log or Committer is given, so the rules are tested with plain
// values and the commit path can later be replaced by the cluster's Raft-backed Committer.
package txlog
