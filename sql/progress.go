package sql

import (
	"fmt"

	gms "github.com/dolthub/go-mysql-server/sql"

	"github.com/lakehoused/lakehoused/compaction"
)

// progressList is GMS's process list with the progress of maintenance jobs added to the
// Info column of the connection running them, so SHOW PROCESSLIST (and
// information_schema.processlist) shows how far a long OPTIMIZE, ZORDER or VACUUM is:
//
//	CALL lake_optimize('db.t') /* progress: 12/40 files, 96.0/310.5 MiB */
type progressList struct {
	gms.ProcessList
	jobs *compaction.Jobs
}

func (p *progressList) Processes() []gms.Process {
	procs := p.ProcessList.Processes()
	for i := range procs {
		procs[i].Query = redactQuery(procs[i].Query)
	}
	running := map[uint32]compaction.JobStatus{}
	for _, j := range p.jobs.List() {
		if j.State == "running" && j.Conn != 0 {
			running[j.Conn] = j
		}
	}
	if len(running) == 0 {
		return procs
	}
	for i := range procs {
		if j, ok := running[procs[i].Connection]; ok {
			procs[i].Query += " " + progressText(j)
		}
	}
	return procs
}

func progressText(j compaction.JobStatus) string {
	const mib = 1 << 20
	if j.FilesTotal == 0 && (j.RowsDone > 0 || j.BytesTotal > 0 || j.BytesDone > 0) {
		// Copies and reads of external data: rows, and bytes of input when known.
		s := fmt.Sprintf("/* %s progress: %d rows, %.1f MiB", j.Kind, j.RowsDone, float64(j.BytesDone)/mib)
		if j.BytesTotal > 0 {
			s += fmt.Sprintf(" of %.1f MiB (%.0f%%)", float64(j.BytesTotal)/mib, 100*float64(j.BytesDone)/float64(j.BytesTotal))
		}
		return s + " */"
	}
	return fmt.Sprintf("/* %s progress: %d/%d files, %.1f/%.1f MiB */", j.Kind, j.FilesDone, j.FilesTotal,
		float64(j.BytesDone)/mib, float64(j.BytesTotal)/mib)
}
