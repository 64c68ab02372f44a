package txlog

import (
	"errors"
	"strconv"
)

// RebaseError is a conflict with commits that only rearranged data (compaction, Z-ordering:
// every file action has dataChange=false): they removed files this transaction also
// removes, but the table's rows did not change. A writer that identifies its rows by
// content can redo its work on the snapshot at Version and commit again, instead of
// failing its client. It wraps ErrConflict, so callers that cannot rebase treat it as
// any conflict.
type RebaseError struct {
	// Version is the newest version the transaction may rebase onto: every commit after
	// its read version up to this one either did not conflict or only rearranged data.
	Version int64
	err     error
}

func (e *RebaseError) Error() string {
	return e.err.Error() + " (the conflicting commits only rearranged files; the transaction can be redone on version " + strconv.FormatInt(e.Version, 10) + ")"
}
func (e *RebaseError) Unwrap() error { return e.err }

// Sentinel errors. Callers test them with errors.Is; every error returned by this package
// wraps one of them (or a storage error) with the table, version and a hint at the fix.
var (
	// ErrNoTable: the store has no _delta_log (no commit and no checkpoint).
	ErrNoTable = errors.New("txlog: not a Delta table")
	// ErrVersionNotFound: the asked-for version does not exist or can no longer be
	// reconstructed (its commits were cleaned up and no checkpoint covers it).
	ErrVersionNotFound = errors.New("txlog: version not found")
	// ErrBeforeFirstCommit: a timestamp earlier than the table's first available commit.
	ErrBeforeFirstCommit = errors.New("txlog: timestamp is before the first commit")
	// ErrConflict: a concurrent commit made this transaction invalid; retry it from a new
	// snapshot. The SQL layer maps it to MySQL 1213 / SQLSTATE 40001.
	ErrConflict = errors.New("txlog: concurrent update conflict")
	// ErrUnsupportedFeature: the table's protocol needs a reader or writer feature
	// lakehoused does not implement.
	ErrUnsupportedFeature = errors.New("txlog: unsupported Delta feature")
	// ErrCorruptLog: a commit or checkpoint file cannot be parsed or violates the protocol.
	ErrCorruptLog = errors.New("txlog: corrupt Delta log")
	// ErrTableExists: creating a table (readVersion -1) found version 0 already written.
	ErrTableExists = errors.New("txlog: table already exists")
)

// EngineInfo is the engine name written into commitInfo.engineInfo as
// EngineInfo + "/" + Version.
const EngineInfo = "lakehoused"

// Version is the lakehoused version recorded in commitInfo.engineInfo. cmd/lakehoused sets
// it at start-up (or the build sets it with -ldflags); it is not changed afterwards.
var Version = "dev"

func engineInfo() string { return EngineInfo + "/" + Version }
