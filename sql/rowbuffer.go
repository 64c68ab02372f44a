package sql

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	gms "github.com/dolthub/go-mysql-server/sql"
)

// chunkRows is how many staged rows are frozen into one Arrow batch.
const chunkRows = 1 << 16

// rowBuffer holds rows a transaction inserted and has not committed. Rows arrive one by one
// from GMS; every chunkRows of them are frozen into an Arrow batch, which is ~40x smaller
// than boxed GMS rows and nearly pointer-free, so a LOAD DATA of millions of rows neither
// exhausts memory nor drowns in garbage collection. At commit the batches go to the Parquet
// writer as they are.
type rowBuffer struct {
	sch   gms.Schema
	as    *arrow.Schema
	chunk int // rows per frozen batch: chunkRows, smaller in tests

	chunks  []arrow.RecordBatch
	offsets []int // index of each chunk's first row
	tail    []gms.Row
	n       int
}

func newRowBuffer(sch gms.Schema, as *arrow.Schema) *rowBuffer {
	return &rowBuffer{sch: sch, as: as, chunk: chunkRows}
}

func (b *rowBuffer) len() int { return b.n }

func (b *rowBuffer) append(r gms.Row) error {
	b.tail = append(b.tail, r)
	b.n++
	if len(b.tail) >= b.chunk {
		return b.freeze()
	}
	return nil
}

// freeze turns the tail into a batch.
func (b *rowBuffer) freeze() error {
	if len(b.tail) == 0 {
		return nil
	}
	rec, err := rowsToRecord(b.tail, b.sch, b.as)
	if err != nil {
		return err
	}
	b.offsets = append(b.offsets, b.n-len(b.tail))
	b.chunks = append(b.chunks, rec)
	b.tail = nil
	return nil
}

// appendAll moves every row of o (which must not be used afterwards) to the end of b,
// keeping o's batches as they are.
func (b *rowBuffer) appendAll(o *rowBuffer) error {
	if len(o.chunks) > 0 {
		if err := b.freeze(); err != nil {
			return err
		}
		for i, c := range o.chunks {
			b.offsets = append(b.offsets, b.n+o.offsets[i])
			b.chunks = append(b.chunks, c)
		}
	}
	b.tail = append(b.tail, o.tail...)
	b.n += o.n
	o.chunks, o.offsets, o.tail, o.n = nil, nil, nil, 0
	if len(b.tail) >= b.chunk {
		return b.freeze()
	}
	return nil
}

// appendBatch adds a ready Arrow batch (schema b.as, at most chunkRows rows) whose ownership
// passes to b. LOAD DATA builds its batches column by column and stages them this way.
func (b *rowBuffer) appendBatch(rec arrow.RecordBatch) error {
	if err := b.freeze(); err != nil {
		return err
	}
	b.offsets = append(b.offsets, b.n)
	b.chunks = append(b.chunks, rec)
	b.n += int(rec.NumRows())
	return nil
}

// each calls fn with every row and its index, in order; frozen rows are converted back.
func (b *rowBuffer) each(fn func(i int, r gms.Row) error) error {
	for ci, c := range b.chunks {
		readers := b.readers(c)
		rows, err := recordRows(c, readers)
		if err != nil {
			return err
		}
		for j, r := range rows {
			if err := fn(b.offsets[ci]+j, r); err != nil {
				return err
			}
		}
	}
	base := b.n - len(b.tail)
	for j, r := range b.tail {
		if err := fn(base+j, r); err != nil {
			return err
		}
	}
	return nil
}

// row returns row i.
func (b *rowBuffer) row(i int) (gms.Row, error) {
	if base := b.n - len(b.tail); i >= base {
		return b.tail[i-base], nil
	}
	for ci := len(b.chunks) - 1; ci >= 0; ci-- {
		if i >= b.offsets[ci] {
			c := b.chunks[ci]
			readers := b.readers(c)
			r := make(gms.Row, len(readers))
			for col, rd := range readers {
				v, err := rd(c.Column(col), i-b.offsets[ci])
				if err != nil {
					return nil, err
				}
				r[col] = v
			}
			return r, nil
		}
	}
	return nil, fmt.Errorf("staged row %d out of range", i)
}

func (b *rowBuffer) readers(c arrow.RecordBatch) []valueReader {
	out := make([]valueReader, len(b.sch))
	for i := range b.sch {
		out[i] = readerFor(c.Column(i).DataType(), b.sch[i].Type)
	}
	return out
}

// batches returns the rows not marked dead as Arrow batches, for the Parquet writer. Frozen
// batches without dead rows are returned as they are (the caller must not release them).
func (b *rowBuffer) batches(dead func(int) bool) ([]arrow.RecordBatch, []func(), error) {
	var out []arrow.RecordBatch
	var release []func()
	for ci, c := range b.chunks {
		n := int(c.NumRows())
		anyDead := false
		for j := 0; j < n && !anyDead; j++ {
			anyDead = dead(b.offsets[ci] + j)
		}
		if !anyDead {
			out = append(out, c)
			continue
		}
		var keep []gms.Row
		rows, err := recordRows(c, b.readers(c))
		if err != nil {
			return nil, nil, err
		}
		for j, r := range rows {
			if !dead(b.offsets[ci] + j) {
				keep = append(keep, r)
			}
		}
		if len(keep) == 0 {
			continue
		}
		rec, err := rowsToRecord(keep, b.sch, b.as)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, rec)
		release = append(release, rec.Release)
	}
	var keep []gms.Row
	base := b.n - len(b.tail)
	for j, r := range b.tail {
		if !dead(base + j) {
			keep = append(keep, r)
		}
	}
	if len(keep) > 0 {
		rec, err := rowsToRecord(keep, b.sch, b.as)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, rec)
		release = append(release, rec.Release)
	}
	return out, release, nil
}

// release frees the frozen batches.
func (b *rowBuffer) release() {
	for _, c := range b.chunks {
		c.Release()
	}
	b.chunks, b.offsets, b.tail, b.n = nil, nil, nil, 0
}
