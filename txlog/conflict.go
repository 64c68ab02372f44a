package txlog

import (
	"fmt"
	"strings"
)

// Conflict checking decides whether a transaction that read version r may still commit
// after other transactions committed versions r+1…n. It is pure: the committer passes in
// the actions, so the rules are tested with plain values.
//
// The rules follow Delta-Spark's ConflictChecker for Serializable isolation, made
// conservative where we do not yet know what the transaction read: lakehoused does not
// record read predicates, so a transaction that is not a blind append is assumed to have
// read the whole table. This turns some harmless UPDATE-vs-INSERT races into retryable
// conflicts; it never lets a lost update through.

// txnSummary is what the conflict rules need to know about one set of actions.
type txnSummary struct {
	metadata, protocol bool
	blindAppend        bool
	// dataChangeOnlyFalse: every file action has dataChange=false and there is no
	// metadata (OPTIMIZE, compaction): it runs at snapshot isolation.
	rearrangeOnly bool
	// appendOnly: only adds files (an INSERT, blind or key-checked), no removes or metadata.
	appendOnly        bool
	addedDataChange   []string
	removedDataChange []string
	removed           map[string]string // fileKey -> path
	appIDs            map[string]bool
	domains           map[string]bool
}

func summarize(actions []Action) txnSummary {
	s := txnSummary{removed: map[string]string{}, appIDs: map[string]bool{}, domains: map[string]bool{}}
	var adds, removes, dataChange int
	readData := false
	for _, a := range actions {
		switch {
		case a.CommitInfo != nil:
			// The caller may know it read data although it only adds files (an insert that
			// checked a primary key): isBlindAppend=false then keeps it from being retried
			// blindly over a concurrent append. A caller cannot make a reading commit blind.
			if b := a.CommitInfo.IsBlindAppend; b != nil && !*b {
				readData = true
			}
		case a.MetaData != nil:
			s.metadata = true
		case a.Protocol != nil:
			s.protocol = true
		case a.Add != nil:
			adds++
			if a.Add.DataChange {
				dataChange++
				s.addedDataChange = append(s.addedDataChange, a.Add.Path)
			}
		case a.Remove != nil:
			removes++
			if a.Remove.DataChange {
				dataChange++
				s.removedDataChange = append(s.removedDataChange, a.Remove.Path)
			}
			s.removed[fileKey(a.Remove.Path, a.Remove.DeletionVector)] = a.Remove.Path
		case a.Txn != nil:
			s.appIDs[a.Txn.AppID] = true
		case a.Domain != nil:
			s.domains[a.Domain.Domain] = true
		}
	}
	s.blindAppend = !readData && removes == 0 && !s.metadata && !s.protocol && dataChange == adds
	s.rearrangeOnly = !s.metadata && !s.protocol && dataChange == 0 && adds+removes > 0
	// Appends that read the table are not ordered after a WriteSerializable transaction
	// safely (a RESTORE re-adding old files, another engine's INSERT … SELECT), except
	// lakehoused's own key-checked inserts, which read only whether their keys existed.
	keyChecked := false
	if ci := commitInfoOf(actions); ci != nil {
		keyChecked = ci.Operation == "WRITE" && strings.HasPrefix(ci.EngineInfo, EngineInfo+"/")
	}
	s.appendOnly = !s.metadata && !s.protocol && removes == 0 && adds > 0 && len(s.appIDs) == 0 && len(s.domains) == 0 &&
		(!readData || keyChecked)
	return s
}

// isBlindAppend reports whether actions only add new data files: such a transaction read
// nothing, so no concurrent append can invalidate it.
func isBlindAppend(actions []Action) bool { return summarize(actions).blindAppend }

// checkConflict returns nil when mine can commit after winner (committed as version
// winnerVersion), or an error wrapping ErrConflict that says why.
func checkConflict(mine []Action, winnerVersion int64, winner []Action) error {
	m, w := summarize(mine), summarize(winner)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: concurrent update: version %d %s; retry the transaction", ErrConflict, winnerVersion, fmt.Sprintf(format, args...))
	}
	if w.protocol {
		return fail("changed the table protocol")
	}
	if w.metadata {
		return fail("changed the table metadata (schema, partitioning or properties)")
	}
	for d := range m.domains {
		if w.domains[d] {
			return fail("also changed domain metadata %q", d)
		}
	}
	for id := range m.appIDs {
		if w.appIDs[id] {
			return fail("committed for the same application id %q (txn)", id)
		}
	}
	for k, p := range m.removed {
		if _, ok := w.removed[k]; ok {
			return fail("removed file %s, which this transaction also removes", p)
		}
	}
	if m.blindAppend || m.rearrangeOnly {
		// A blind append read nothing; a compaction rewrites files without changing data
		// and has already been checked for files removed twice.
		return nil
	}
	// Without read predicates, a reading transaction depends on the whole table.
	if len(w.addedDataChange) > 0 {
		return fail("added %s, which this transaction may have needed to read", fileList(w.addedDataChange))
	}
	if len(w.removedDataChange) > 0 {
		return fail("removed %s, which this transaction may have read", fileList(w.removedDataChange))
	}
	return nil
}

func fileList(paths []string) string {
	const show = 3
	if len(paths) == 1 {
		return "file " + paths[0]
	}
	if len(paths) <= show {
		return "files " + strings.Join(paths, ", ")
	}
	return fmt.Sprintf("files %s and %d more", strings.Join(paths[:show], ", "), len(paths)-show)
}
