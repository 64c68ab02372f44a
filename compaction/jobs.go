package compaction

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Jobs is the registry of maintenance operations in progress, for GET /api/jobs and
// SHOW PROCESSLIST. A job is registered when it starts and dropped when it ends; the last
// finished ones are kept for a while so a client polling the endpoint sees how each ended.
type Jobs struct {
	mu       sync.Mutex
	next     int64
	running  map[int64]*Job
	finished []JobStatus // newest last, at most keepFinished
}

const keepFinished = 32

// Job is one running maintenance operation. Its counters are updated by the operation and
// read concurrently by whoever reports progress.
type Job struct {
	ID      int64
	Kind    string // optimize, zorder, vacuum, auto-compaction, checkpoint, copy, export, read_csv, …
	Table   string
	Started time.Time
	// Conn is the MySQL connection that runs the job (0 for background jobs), so SHOW
	// PROCESSLIST can show its progress.
	Conn uint32

	FilesDone, FilesTotal atomic.Int64
	BytesDone, BytesTotal atomic.Int64
	// RowsDone counts rows read or written by copies and exports.
	RowsDone atomic.Int64

	jobs *Jobs
}

// JobStatus is a job as reported: a copy of its counters at one instant.
type JobStatus struct {
	ID         int64     `json:"id"`
	Conn       uint32    `json:"connection,omitempty"`
	Kind       string    `json:"kind"`
	Table      string    `json:"table"`
	State      string    `json:"state"` // running, done, failed
	Started    time.Time `json:"started"`
	Ended      time.Time `json:"ended,omitzero"`
	FilesDone  int64     `json:"files_done"`
	FilesTotal int64     `json:"files_total"`
	BytesDone  int64     `json:"bytes_done"`
	BytesTotal int64     `json:"bytes_total"`
	RowsDone   int64     `json:"rows_done,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// Start registers a job run for MySQL connection conn (0 for background jobs).
func (j *Jobs) Start(kind, table string, conn uint32) *Job {
	job := &Job{Kind: kind, Table: table, Conn: conn, Started: time.Now(), jobs: j}
	if j == nil {
		return job
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.running == nil {
		j.running = map[int64]*Job{}
	}
	j.next++
	job.ID = j.next
	j.running[job.ID] = job
	return job
}

// Plan sets the totals once the operation knows them.
func (job *Job) Plan(files, bytes int64) {
	if job == nil {
		return
	}
	job.FilesTotal.Store(files)
	job.BytesTotal.Store(bytes)
}

// Done counts files and bytes processed.
func (job *Job) Done(files, bytes int64) {
	if job == nil {
		return
	}
	job.FilesDone.Add(files)
	job.BytesDone.Add(bytes)
}

// End unregisters the job, remembering how it ended.
func (job *Job) End(err error) {
	if job == nil || job.jobs == nil {
		return
	}
	st := job.status("done")
	st.Ended = time.Now()
	if err != nil {
		st.State, st.Error = "failed", err.Error()
	}
	j := job.jobs
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.running, job.ID)
	j.finished = append(j.finished, st)
	if len(j.finished) > keepFinished {
		j.finished = append(j.finished[:0], j.finished[len(j.finished)-keepFinished:]...)
	}
}

func (job *Job) status(state string) JobStatus {
	return JobStatus{ID: job.ID, Conn: job.Conn, Kind: job.Kind, Table: job.Table, State: state, Started: job.Started,
		FilesDone: job.FilesDone.Load(), FilesTotal: job.FilesTotal.Load(),
		BytesDone: job.BytesDone.Load(), BytesTotal: job.BytesTotal.Load(), RowsDone: job.RowsDone.Load()}
}

// List returns the running jobs (oldest first) followed by the recently finished ones.
func (j *Jobs) List() []JobStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]JobStatus, 0, len(j.running)+len(j.finished))
	for _, job := range j.running {
		out = append(out, job.status("running"))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return append(out, j.finished...)
}
