package txlog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehoused/lakehoused/storage"
)

// Checkpoints are Parquet files holding the reconciled state at one version (protocol,
// metaData, live adds, unexpired removes, txns, domains), one action per row in the column
// named after the action. Reading turns each row back into the JSON form of the action so
// that checkpoint and commit actions go through the same decoding and the same Replay.

// checkpointActionColumns are the top-level checkpoint columns that hold actions.
var checkpointActionColumns = []string{"protocol", "metaData", "add", "remove", "txn", "domainMetadata"}

// readCheckpoint reads all parts of a checkpoint and returns its actions.
func readCheckpoint(ctx context.Context, store storage.Store, keys []string) ([]Action, error) {
	var out []Action
	for _, key := range keys {
		actions, err := readCheckpointFile(ctx, store, key)
		if err != nil {
			return nil, err
		}
		out = append(out, actions...)
	}
	return out, nil
}

// openCheckpointFile opens one checkpoint file and reads its Parquet footer; the caller
// closes both. A file that is not Parquet (truncated, half-copied) is ErrCorruptLog.
func openCheckpointFile(ctx context.Context, store storage.Store, key string) (*file.Reader, storage.ReaderAtCloser, error) {
	r, size, err := store.Open(ctx, key)
	if err != nil {
		return nil, nil, fmt.Errorf("txlog: read checkpoint %s/%s: %w", store.URL(), key, err)
	}
	pf, err := file.NewParquetReader(io.NewSectionReader(r, 0, size))
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("%w: checkpoint %s/%s: %v", ErrCorruptLog, store.URL(), key, err)
	}
	return pf, r, nil
}

// checkCheckpointFooters checks that every part of a checkpoint is a Parquet file with a
// readable footer, without reading its rows: log cleanup's guard before it deletes the
// commits a checkpoint replaces.
func checkCheckpointFooters(ctx context.Context, store storage.Store, keys []string) error {
	for _, key := range keys {
		pf, r, err := openCheckpointFile(ctx, store, key)
		if err != nil {
			return err
		}
		pf.Close()
		r.Close()
	}
	return nil
}

func readCheckpointFile(ctx context.Context, store storage.Store, key string) ([]Action, error) {
	pf, r, err := openCheckpointFile(ctx, store, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	defer pf.Close()
	corrupt := func(err error) error {
		return fmt.Errorf("%w: checkpoint %s/%s: %v", ErrCorruptLog, store.URL(), key, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.DefaultAllocator)
	if err != nil {
		return nil, corrupt(err)
	}
	schema, err := fr.Schema()
	if err != nil {
		return nil, corrupt(err)
	}
	// Read only the action columns; Spark checkpoints may carry others (cdc, sidecar, …).
	var cols []int
	var names []string
	for i, f := range schema.Fields() {
		for _, n := range checkpointActionColumns {
			if f.Name == n {
				cols = append(cols, i)
				names = append(names, n)
			}
		}
	}
	if len(cols) == 0 {
		return nil, corrupt(fmt.Errorf("no action columns (%s)", strings.Join(checkpointActionColumns, ", ")))
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		return nil, corrupt(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 4096)
	defer tr.Release()
	var out []Action
	for tr.Next() {
		rec := tr.RecordBatch()
		for row := 0; row < int(rec.NumRows()); row++ {
			for k, ci := range cols {
				col := rec.Column(ci)
				if col.IsNull(row) {
					continue
				}
				v := arrowValue(col, row)
				if names[k] == "add" {
					fixParsedStats(v)
				}
				b, err := json.Marshal(map[string]any{names[k]: v})
				if err != nil {
					return nil, corrupt(err)
				}
				var a Action
				if err := json.Unmarshal(b, &a); err != nil {
					return nil, corrupt(fmt.Errorf("row %d: %v", row, err))
				}
				if a != (Action{}) {
					out = append(out, a)
				}
			}
		}
	}
	if err := tr.Err(); err != nil {
		return nil, corrupt(err)
	}
	return out, nil
}

// fixParsedStats gives an add read from a checkpoint the stats JSON string when the writer
// stored only stats_parsed (delta.checkpoint.writeStatsAsJson=false), so the rest of the
// system sees stats in one form.
func fixParsedStats(v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	if s, _ := m["stats"].(string); s == "" {
		if p, ok := m["stats_parsed"].(map[string]any); ok && p != nil {
			if b, err := json.Marshal(dropNulls(p)); err == nil {
				m["stats"] = string(b)
			}
		}
	}
	delete(m, "stats_parsed")
	delete(m, "partitionValues_parsed")
}

// dropNulls removes null entries from nested maps: a struct column of stats_parsed has a
// null for every column the file has no statistic for, while the JSON form omits them.
func dropNulls(m map[string]any) map[string]any {
	for k, v := range m {
		switch x := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			m[k] = dropNulls(x)
		}
	}
	return m
}

// arrowValue converts one value of an Arrow array into plain JSON-able Go values. Maps
// become JSON objects (GetOneForMarshal would give a list of key/value pairs), lists
// become slices and structs become maps.
func arrowValue(arr arrow.Array, i int) any {
	if arr.IsNull(i) {
		return nil
	}
	switch a := arr.(type) {
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		m := make(map[string]any, a.NumField())
		for j := 0; j < a.NumField(); j++ {
			m[st.Field(j).Name] = arrowValue(a.Field(j), i)
		}
		return m
	case *array.Map:
		start, end := a.ValueOffsets(i)
		keys, items := a.Keys(), a.Items()
		m := make(map[string]any, end-start)
		for j := start; j < end; j++ {
			m[fmt.Sprint(arrowValue(keys, int(j)))] = arrowValue(items, int(j))
		}
		return m
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		vals := a.ListValues()
		out := make([]any, 0, end-start)
		for j := start; j < end; j++ {
			out = append(out, arrowValue(vals, int(j)))
		}
		return out
	case *array.Timestamp:
		// Stats carry timestamps as ISO-8601 strings in ms precision.
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit).UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	return arr.GetOneForMarshal(i)
}

// --- writing ---

// checkpointSchema is the Parquet schema of checkpoints lakehoused writes: the protocol's
// V1 checkpoint schema with stats as a JSON string and partitionValues as map<string,string>,
// readable by Spark, delta-rs, DuckDB and our own reader.
var checkpointSchema = func() *arrow.Schema {
	str := arrow.BinaryTypes.String
	i64 := arrow.PrimitiveTypes.Int64
	i32 := arrow.PrimitiveTypes.Int32
	boolean := arrow.FixedWidthTypes.Boolean
	strMap := arrow.MapOf(str, str)
	strList := arrow.ListOf(str)
	f := func(name string, t arrow.DataType) arrow.Field {
		return arrow.Field{Name: name, Type: t, Nullable: true}
	}
	dv := arrow.StructOf(f("storageType", str), f("pathOrInlineDv", str), f("offset", i32), f("sizeInBytes", i32), f("cardinality", i64))
	return arrow.NewSchema([]arrow.Field{
		f("txn", arrow.StructOf(f("appId", str), f("version", i64), f("lastUpdated", i64))),
		f("add", arrow.StructOf(f("path", str), f("partitionValues", strMap), f("size", i64), f("modificationTime", i64),
			f("dataChange", boolean), f("stats", str), f("tags", strMap), f("deletionVector", dv), f("baseRowId", i64), f("defaultRowCommitVersion", i64))),
		f("remove", arrow.StructOf(f("path", str), f("deletionTimestamp", i64), f("dataChange", boolean), f("extendedFileMetadata", boolean),
			f("partitionValues", strMap), f("size", i64), f("deletionVector", dv))),
		f("metaData", arrow.StructOf(f("id", str), f("name", str), f("description", str),
			f("format", arrow.StructOf(f("provider", str), f("options", strMap))), f("schemaString", str),
			f("partitionColumns", strList), f("configuration", strMap), f("createdTime", i64))),
		f("protocol", arrow.StructOf(f("minReaderVersion", i32), f("minWriterVersion", i32), f("readerFeatures", strList), f("writerFeatures", strList))),
		f("domainMetadata", arrow.StructOf(f("domain", str), f("configuration", str), f("removed", boolean))),
	}, nil)
}()

// CheckpointActions returns the actions a checkpoint of s holds: protocol, metaData, txns,
// domains, live adds and the removes whose deletionTimestamp is within retention of now.
func CheckpointActions(s *Snapshot, now time.Time) []Action {
	p, m := s.Protocol, normalizeAction(Action{MetaData: &s.Metadata}).MetaData
	out := []Action{{Protocol: &p}, {MetaData: m}}
	appIDs := make([]string, 0, len(s.Txns))
	for id := range s.Txns {
		appIDs = append(appIDs, id)
	}
	sort.Strings(appIDs)
	for _, id := range appIDs {
		t := s.Txns[id]
		out = append(out, Action{Txn: &t})
	}
	domains := make([]string, 0, len(s.Domains))
	for d := range s.Domains {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	for _, d := range domains {
		dm := s.Domains[d]
		out = append(out, Action{Domain: &dm})
	}
	for _, a := range s.Files {
		out = append(out, Action{Add: a})
	}
	cutoff := now.Add(-deletedFileRetention(s.Metadata.Configuration)).UnixMilli()
	for _, r := range s.Tombstones {
		if r.DeletionTimestamp != nil && *r.DeletionTimestamp < cutoff {
			continue // expired: VACUUM may already have deleted the file
		}
		rc := *r
		rc.Stats, rc.Tags = "", nil // the protocol keeps neither in checkpoints
		out = append(out, Action{Remove: &rc})
	}
	return out
}

// EncodeCheckpoint writes actions as a single-file Parquet checkpoint.
func EncodeCheckpoint(actions []Action) ([]byte, error) {
	rec := buildCheckpointRecord(actions)
	defer rec.Release()
	var buf bytes.Buffer
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithCreatedBy(engineInfo()))
	w, err := pqarrow.NewFileWriter(checkpointSchema, &buf, props, pqarrow.NewArrowWriterProperties())
	if err != nil {
		return nil, fmt.Errorf("txlog: write checkpoint: %w", err)
	}
	if err := w.Write(rec); err != nil {
		w.Close()
		return nil, fmt.Errorf("txlog: write checkpoint: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("txlog: write checkpoint: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteCheckpoint writes <v>.checkpoint.parquet for s and then points _last_checkpoint at
// it. The pointer is written last so it never names a checkpoint that is not complete.
func WriteCheckpoint(ctx context.Context, store storage.Store, s *Snapshot, now time.Time) error {
	actions := CheckpointActions(s, now)
	data, err := EncodeCheckpoint(actions)
	if err != nil {
		return err
	}
	key := fmt.Sprintf("%s%020d.checkpoint.parquet", logDir, s.Version)
	if err := store.Put(ctx, key, data); err != nil {
		return fmt.Errorf("txlog: write checkpoint %s/%s: %w", store.URL(), key, err)
	}
	lc, _ := json.Marshal(lastCheckpoint{Version: s.Version, Size: int64(len(actions)), SizeInBytes: int64(len(data)), NumOfAddFiles: int64(len(s.Files))})
	if err := store.Put(ctx, lastCheckpointKey, lc); err != nil {
		return fmt.Errorf("txlog: write %s/%s: %w", store.URL(), lastCheckpointKey, err)
	}
	return nil
}

// Checkpoint writes a checkpoint of the latest version now, synchronously, and returns
// that version: the explicit checkpoint of CALL lake_checkpoint('db.t'). A version that
// already has a checkpoint gets it rewritten rather than returned as is: whoever asks
// explicitly wants the result of a checkpoint written now — tombstones older than
// delta.deletedFileRetentionDuration dropped as of now, _last_checkpoint pointing at the
// newest version again (it may be stale or name a damaged file) — and the cost, O(live
// files), is the one they asked to pay. A reader of the old file is not disturbed: stores
// replace objects atomically. Then, like a checkpoint after a commit, it runs log cleanup
// as the table's properties say (see CleanupLog); a cleanup failure is logged, not
// returned, because the checkpoint itself was written.
//
// Tables lakehoused cannot write to are refused with ErrUnsupportedFeature: a checkpoint
// is a write to the log, and one written without understanding the table's features
// would be wrong for every reader that opens the table from it.
func (l *Log) Checkpoint(ctx context.Context, now time.Time) (int64, error) {
	v, _, err := l.CheckpointAndCleanup(ctx, now)
	return v, err
}

// CheckpointAndCleanup is Checkpoint that also reports what the log cleanup after it
// deleted (CALL lake_checkpoint shows it). A failed cleanup is logged, not returned: the
// checkpoint stands.
func (l *Log) CheckpointAndCleanup(ctx context.Context, now time.Time) (int64, CleanupResult, error) {
	s, err := l.snapshot(ctx, -1)
	if err != nil {
		return -1, CleanupResult{}, err
	}
	if err := s.Protocol.CheckWrite(); err != nil {
		return -1, CleanupResult{}, fmt.Errorf("txlog: checkpoint %s version %d: %w", l.name(), s.Version, err)
	}
	if err := WriteCheckpoint(ctx, l.store, s, now); err != nil {
		return -1, CleanupResult{}, err
	}
	return s.Version, cleanupAfterCheckpoint(ctx, l.store, s.Metadata.Configuration, now, l.logger), nil
}

// deletedFileRetention is delta.deletedFileRetentionDuration (default one week).
func deletedFileRetention(conf map[string]string) time.Duration {
	if d, ok := parseInterval(conf["delta.deletedFileRetentionDuration"]); ok {
		return d
	}
	return 7 * 24 * time.Hour
}

// parseInterval parses Delta's "interval <n> <unit> [<n> <unit>…]" durations (e.g.
// "interval 1 week", "interval 1 day 12 hours"). Months and years are refused, as Delta
// refuses them for these properties: they have no fixed length.
func parseInterval(s string) (time.Duration, bool) {
	f := strings.Fields(strings.ToLower(strings.TrimSpace(s)))
	if len(f) > 0 && f[0] == "interval" {
		f = f[1:]
	}
	if len(f) == 0 || len(f)%2 != 0 {
		return 0, false
	}
	var total time.Duration
	for i := 0; i < len(f); i += 2 {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || n < 0 {
			return 0, false
		}
		unit := map[string]time.Duration{
			"microsecond": time.Microsecond, "millisecond": time.Millisecond, "second": time.Second,
			"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour, "week": 7 * 24 * time.Hour,
		}[strings.TrimSuffix(f[i+1], "s")]
		if unit == 0 || n > int64(math.MaxInt64/unit) {
			return 0, false
		}
		total += time.Duration(n) * unit
		if total < 0 {
			return 0, false // overflow
		}
	}
	return total, true
}

// checkpointInterval is delta.checkpointInterval, or def.
func checkpointInterval(conf map[string]string, def int64) int64 {
	if n, err := strconv.ParseInt(conf["delta.checkpointInterval"], 10, 64); err == nil && n > 0 {
		return n
	}
	return def
}
