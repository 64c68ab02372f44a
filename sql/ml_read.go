package sql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	gms "github.com/dolthub/go-mysql-server/sql"

	"github.com/lakehoused/lakehoused/table"
)

// Reading ml.metrics straight from its files, for the two readers that take all of it or
// a long stretch of it: the latest_metrics view and the scoreboard's charts. Through the
// engine every row is boxed and every WHERE comparison converts its operands, ~2 µs a row;
// here the Arrow columns are read in place and a run's files and row groups are skipped by
// their statistics.

// MetricPoint is one logged value of a metric.
type MetricPoint struct {
	RunID, Key      string
	Value           float64 // NaN, ±Inf as logged
	Null            bool    // the value is NULL (a row INSERTed without one)
	Timestamp, Step int64
}

// MetricHistory returns every point logged for the given runs (all runs when runIDs is
// empty), in file order, from the latest committed version of ml.metrics.
func (e *Engine) MetricHistory(ctx context.Context, runIDs []string) ([]MetricPoint, error) {
	if err := e.ensureML(); err != nil {
		return nil, err
	}
	qctx := e.internalContext(ctx, "mlflow")
	t, err := e.mlTable(qctx, "metrics")
	if err != nil {
		return nil, err
	}
	var out []MetricPoint
	err = scanMetrics(qctx, t, runIDs, func(p MetricPoint) { out = append(out, p) })
	return out, err
}

// scanMetrics calls fn for each committed row of t (ml.metrics as the statement sees it,
// without its transaction's own changes) whose run is one of runIDs (any when empty).
func scanMetrics(ctx *gms.Context, t *Table, runIDs []string, fn func(MetricPoint)) error {
	var filter *table.Filter
	want := map[string]bool{}
	if len(runIDs) > 0 {
		cf := table.ColumnFilter{Column: "run_id"}
		for _, id := range runIDs {
			want[id] = true
			cf.Ranges = append(cf.Ranges, table.Range{Lo: table.Bound{Value: id, Inclusive: true}, Hi: table.Bound{Value: id, Inclusive: true}})
		}
		filter = &table.Filter{Columns: []table.ColumnFilter{cf}}
	}
	snap := t.snap
	files := table.PruneFiles(snap.Schema, snap.Metadata.PartitionColumns, snap.Files, filter)
	sc, err := table.Scan(ctx, t.ct.Store, snap.Schema, snap.Metadata.PartitionColumns, files,
		table.ScanOptions{Columns: []string{"run_id", "key", "value", "timestamp", "step"}, Filter: filter})
	if err != nil {
		return tableError(t.ct, err)
	}
	defer sc.Close()
	for {
		rec, _, err := sc.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return tableError(t.ct, err)
		}
		err = metricRows(rec, want, fn)
		rec.Release()
		if err != nil {
			return err
		}
	}
}

// metricRows reads one record of (run_id, key, value, timestamp, step).
func metricRows(rec arrow.RecordBatch, want map[string]bool, fn func(MetricPoint)) error {
	str := func(i int) (func(int) string, error) {
		switch a := rec.Column(i).(type) {
		case *array.String:
			return a.Value, nil
		case *array.LargeString:
			return a.Value, nil
		case *array.StringView:
			return a.Value, nil
		}
		return nil, fmt.Errorf("ml.metrics: column %s is %s, not a string", rec.ColumnName(i), rec.Column(i).DataType())
	}
	i64 := func(i int) (func(int) int64, error) {
		switch a := rec.Column(i).(type) {
		case *array.Int64:
			return a.Value, nil
		case *array.Int32:
			return func(k int) int64 { return int64(a.Value(k)) }, nil
		}
		return nil, fmt.Errorf("ml.metrics: column %s is %s, not an integer", rec.ColumnName(i), rec.Column(i).DataType())
	}
	run, err := str(0)
	if err != nil {
		return err
	}
	key, err := str(1)
	if err != nil {
		return err
	}
	vals, ok := rec.Column(2).(*array.Float64)
	if !ok {
		return fmt.Errorf("ml.metrics: column value is %s, not a double", rec.Column(2).DataType())
	}
	ts, err := i64(3)
	if err != nil {
		return err
	}
	step, err := i64(4)
	if err != nil {
		return err
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		id := run(i)
		if len(want) > 0 && !want[id] {
			continue
		}
		p := MetricPoint{RunID: id, Key: key(i), Timestamp: ts(i), Step: step(i)}
		if vals.IsValid(i) {
			p.Value = vals.Value(i)
		} else {
			p.Value, p.Null = math.NaN(), true
		}
		fn(p)
	}
	return nil
}
