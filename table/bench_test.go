package table

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehoused/lakehoused/txlog"
)

// benchRecord builds n rows of (id long, name string, amount double, day date).
func benchRecord(b *testing.B, s *txlog.Schema, n int) arrow.RecordBatch {
	as, err := ArrowSchema(s)
	if err != nil {
		b.Fatal(err)
	}
	rb := array.NewRecordBuilder(memory.DefaultAllocator, as)
	defer rb.Release()
	for i := range n {
		rb.Field(0).(*array.Int64Builder).Append(int64(i))
		rb.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("customer-%06d", i%50000))
		rb.Field(2).(*array.Float64Builder).Append(float64(i%1000) / 3)
		rb.Field(3).(*array.Date32Builder).Append(arrow.Date32(20000 + i%30))
	}
	return rb.NewRecordBatch()
}

// BenchmarkWriteScan reports write and scan throughput in rows/s for 1M rows in 8 files.
func BenchmarkWriteScan(b *testing.B) {
	s := simpleSchema("id:long", "name:string", "amount:double", "day:date")
	const rows = 1 << 20
	rec := benchRecord(b, s, rows)
	defer rec.Release()
	ctx := context.Background()
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			w, _ := NewWriter(newMemStore(), s, nil, WriterOptions{TargetFileSize: 2 << 20})
			for _, r := range splitRecord(rec, 8192) {
				if err := w.Write(ctx, r); err != nil {
					b.Fatal(err)
				}
				r.Release()
			}
			if _, err := w.Close(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	st := newMemStore()
	w, _ := NewWriter(st, s, nil, WriterOptions{TargetFileSize: 2 << 20})
	_ = w.Write(ctx, rec)
	adds, _ := w.Close(ctx)
	for _, prefetch := range []int{-1, 2} {
		b.Run(fmt.Sprintf("scan/prefetch=%d", prefetch), func(b *testing.B) {
			for b.Loop() {
				sc, err := Scan(ctx, st, s, nil, adds, ScanOptions{Prefetch: prefetch})
				if err != nil {
					b.Fatal(err)
				}
				for {
					r, _, err := sc.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					r.Release()
				}
				sc.Close()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
