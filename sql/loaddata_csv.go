package sql

import (
	"bytes"
	"errors"
	"io"
)

// This file splits LOAD DATA input into records and fields with MySQL's FIELDS/LINES rules:
// TERMINATED BY (any length), [OPTIONALLY] ENCLOSED BY (one byte), ESCAPED BY (one byte, or
// none), LINES STARTING BY and TERMINATED BY (any length). Fields are unescaped into a batch's
// own arena so batches can be handed to another goroutine while the reader reuses its buffer.

type csvOptions struct {
	fieldTerm  []byte
	encl       byte // 0 = none
	hasEncl    bool
	esc        byte
	hasEsc     bool
	lineStart  []byte
	lineTerm   []byte
	ignoreRows int64
}

// csvBatch is a run of parsed records. Field j of record r is arena[offs[2k]:offs[2k+1]] with
// k = first[r]+j; a NULL field (\N, or the unquoted word NULL) has offs[2k] == -1.
type csvBatch struct {
	arena  []byte
	offs   []int32
	quoted []bool
	first  []int32 // index of each record's first field; len = records+1
	line   []int64 // logical line number of each record (1-based, counting skipped lines)

	cells []cell    // converted fields, records × columns (loadIter.parseCells)
	errs  []*valErr // rejected fields, same layout
}

func (b *csvBatch) records() int { return len(b.first) - 1 }

func (b *csvBatch) reset() {
	b.arena, b.offs, b.quoted, b.first, b.line = b.arena[:0], b.offs[:0], b.quoted[:0], b.first[:1], b.line[:0]
	b.first[0] = 0
}

// csvReader parses records out of r, buffering as needed.
type csvReader struct {
	opt    csvOptions
	plain  [256]bool // bytes with no meaning inside an unquoted field
	plainQ [256]bool // … inside an enclosed field
	r      io.Reader
	buf    []byte
	pos    int
	end    int
	eof    bool
	line   int64
}

const csvReadSize = 1 << 20

func newCSVReader(r io.Reader, opt csvOptions) *csvReader {
	c := &csvReader{opt: opt, r: r, buf: make([]byte, 2*csvReadSize)}
	for i := range c.plain {
		c.plain[i], c.plainQ[i] = true, true
	}
	c.plain[opt.fieldTerm[0]], c.plain[opt.lineTerm[0]] = false, false
	if opt.hasEsc {
		c.plain[opt.esc], c.plainQ[opt.esc] = false, false
	}
	if opt.hasEncl {
		c.plainQ[opt.encl] = false
	}
	return c
}

// skip returns the end of the run of plain bytes starting at p.
func (c *csvReader) skip(data []byte, p int, plain *[256]bool) int {
	for p < len(data) && plain[data[p]] {
		p++
	}
	return p
}

// fill reads more input, keeping buf[pos:end]. It returns false at EOF with nothing read.
func (c *csvReader) fill() (bool, error) {
	if c.eof {
		return false, nil
	}
	if c.pos > 0 {
		copy(c.buf, c.buf[c.pos:c.end])
		c.end -= c.pos
		c.pos = 0
	}
	if len(c.buf)-c.end < csvReadSize {
		nb := make([]byte, 2*len(c.buf))
		copy(nb, c.buf[:c.end])
		c.buf = nb
	}
	n, err := io.ReadAtLeast(c.r, c.buf[c.end:], 1)
	c.end += n
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		c.eof = true
		return n > 0, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// skipLines drops the first IGNORE n LINES, split by the line terminator alone (as GMS does).
func (c *csvReader) skipLines() error {
	for c.opt.ignoreRows > 0 {
		i := bytes.Index(c.buf[c.pos:c.end], c.opt.lineTerm)
		if i >= 0 {
			c.pos += i + len(c.opt.lineTerm)
			c.opt.ignoreRows--
			c.line++
			continue
		}
		more, err := c.fill()
		if err != nil {
			return err
		}
		if !more {
			c.pos = c.end
			return nil
		}
	}
	return nil
}

// next appends up to max records to b; it returns false when the input is exhausted.
func (c *csvReader) next(b *csvBatch, max int) (bool, error) {
	if err := c.skipLines(); err != nil {
		return false, err
	}
	for b.records() < max {
		mark := len(b.arena)
		markF := len(b.offs)
		n, ok, skip := c.record(c.buf[c.pos:c.end], c.eof, b)
		if !ok {
			b.arena, b.offs, b.quoted = b.arena[:mark], b.offs[:markF], b.quoted[:markF/2]
			more, err := c.fill()
			if err != nil {
				return false, err
			}
			if !more && c.pos >= c.end {
				return b.records() > 0, nil
			}
			continue // at EOF, the rest is the last record
		}
		c.pos += n
		c.line++
		if skip {
			b.arena, b.offs, b.quoted = b.arena[:mark], b.offs[:markF], b.quoted[:markF/2]
			continue
		}
		b.first = append(b.first, int32(len(b.offs)/2))
		b.line = append(b.line, c.line)
	}
	return true, nil
}

// record parses one record from data. It returns the bytes consumed, ok=false when data
// holds no complete record (and atEOF is false, or data is empty), and skip for lines that
// yield no row: lines without the LINES STARTING BY prefix, and empty lines (as GMS skips them).
func (c *csvReader) record(data []byte, atEOF bool, b *csvBatch) (n int, ok, skip bool) {
	if len(data) == 0 {
		return 0, false, false
	}
	o := &c.opt
	p := 0
	if len(o.lineStart) > 0 {
		ip := bytes.Index(data, o.lineStart)
		it := bytes.Index(data, o.lineTerm)
		if it >= 0 && (ip < 0 || it < ip) {
			return it + len(o.lineTerm), true, true
		}
		if ip < 0 {
			if atEOF {
				return len(data), true, true
			}
			return 0, false, false
		}
		p = ip + len(o.lineStart)
	}
	if hasPrefixAt(data, p, o.lineTerm) {
		return p + len(o.lineTerm), true, true
	}
	if p == len(data) {
		if atEOF {
			return len(data), true, true
		}
		return 0, false, false
	}
	ft0, lt0 := o.fieldTerm[0], o.lineTerm[0]
	for {
		// One field starting at p.
		start := len(b.arena)
		quoted := false
		null := false
		if o.hasEncl && p < len(data) && data[p] == o.encl {
			quoted = true
			p++
			closed := false
			for p < len(data) {
				if q := c.skip(data, p, &c.plainQ); q > p {
					b.arena = append(b.arena, data[p:q]...)
					p = q
					continue
				}
				ch := data[p]
				if o.hasEsc && ch == o.esc {
					if p+1 >= len(data) {
						break
					}
					b.arena = appendUnescaped(b.arena, data[p+1])
					p += 2
					continue
				}
				if ch == o.encl {
					if p+1 < len(data) && data[p+1] == o.encl {
						b.arena = append(b.arena, o.encl)
						p += 2
						continue
					}
					if p+1 == len(data) && !atEOF {
						break // need more input to know what follows
					}
					if p+1 == len(data) || hasPrefixAt(data, p+1, o.fieldTerm) || hasPrefixAt(data, p+1, o.lineTerm) {
						p++
						closed = true
						break
					}
				}
				b.arena = append(b.arena, ch)
				p++
			}
			if !closed {
				if !atEOF {
					return 0, false, false
				}
				// Unterminated enclosure at end of input: take what is there.
			}
		} else {
			for p < len(data) {
				if q := c.skip(data, p, &c.plain); q > p {
					b.arena = append(b.arena, data[p:q]...)
					p = q
					continue
				}
				ch := data[p]
				if o.hasEsc && ch == o.esc {
					if p+1 >= len(data) {
						if !atEOF {
							return 0, false, false
						}
						b.arena = append(b.arena, ch)
						p++
						continue
					}
					if data[p+1] == 'N' && len(b.arena) == start && fieldEndsAt(data, p+2, o, atEOF) {
						null = true
						p += 2
						continue
					}
					b.arena = appendUnescaped(b.arena, data[p+1])
					p += 2
					continue
				}
				if ch == ft0 && hasPrefixAt(data, p, o.fieldTerm) {
					break
				}
				if ch == lt0 && hasPrefixAt(data, p, o.lineTerm) {
					break
				}
				b.arena = append(b.arena, ch)
				p++
			}
			if !null && len(b.arena)-start == 4 && string(b.arena[start:]) == "NULL" {
				null = true
			}
		}
		if null {
			b.arena = b.arena[:start]
			b.offs = append(b.offs, -1, -1)
		} else {
			b.offs = append(b.offs, int32(start), int32(len(b.arena)))
		}
		b.quoted = append(b.quoted, quoted)
		// What ends the field?
		switch {
		case hasPrefixAt(data, p, o.fieldTerm):
			p += len(o.fieldTerm)
			if p == len(data) && !atEOF {
				return 0, false, false
			}
			if p == len(data) {
				// A trailing field terminator at EOF: one more, empty field.
				b.offs = append(b.offs, int32(len(b.arena)), int32(len(b.arena)))
				b.quoted = append(b.quoted, false)
				return p, true, false
			}
		case hasPrefixAt(data, p, o.lineTerm):
			return p + len(o.lineTerm), true, false
		case p >= len(data):
			if !atEOF {
				return 0, false, false
			}
			return p, true, false
		default:
			// Text after a closing enclosure that is not a terminator: MySQL keeps it as part
			// of the next field; do the same by continuing the scan.
			if !atEOF && p >= len(data) {
				return 0, false, false
			}
		}
	}
}

func fieldEndsAt(data []byte, p int, o *csvOptions, atEOF bool) bool {
	if p >= len(data) {
		return atEOF
	}
	return hasPrefixAt(data, p, o.fieldTerm) || hasPrefixAt(data, p, o.lineTerm)
}

func hasPrefixAt(data []byte, p int, pre []byte) bool {
	return len(pre) > 0 && p+len(pre) <= len(data) && bytes.Equal(data[p:p+len(pre)], pre)
}

// appendUnescaped appends what MySQL reads for escape character + ch.
func appendUnescaped(b []byte, ch byte) []byte {
	switch ch {
	case '0':
		return append(b, 0)
	case 'b':
		return append(b, '\b')
	case 'n':
		return append(b, '\n')
	case 'r':
		return append(b, '\r')
	case 't':
		return append(b, '\t')
	case 'Z':
		return append(b, 26)
	}
	return append(b, ch)
}
