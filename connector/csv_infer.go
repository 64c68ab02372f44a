package connector

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// This file decides, from a sample of the first file, whether the first row is a header and
// what type each column has. Types are tried narrowest first — BOOLEAN, BIGINT, DOUBLE,
// DATE, DATETIME — and a column whose sampled values do not all fit one is TEXT. The first
// row is a header when its values are all text while the rows below it say at least one
// column is not (DuckDB's rule); when every column is text, it is a header when its values
// are distinct, which a row of data rarely is not.

// Type bits a value fits.
const (
	fitsBool uint8 = 1 << iota
	fitsLong
	fitsDouble
	fitsDate
	fitsTimestamp
	fitsAll = fitsBool | fitsLong | fitsDouble | fitsDate | fitsTimestamp
)

// classify returns the types a non-empty value fits.
func classify(v []byte) uint8 {
	v = trimBlank(v)
	if len(v) == 0 {
		return 0
	}
	if _, ok := parseBool(v, false); ok {
		return fitsBool
	}
	var m uint8
	if isFloatSyntax(v) && !leadingZero(v) {
		m |= fitsDouble
		if _, ok := parseInt(v); ok {
			m |= fitsLong
		}
	}
	if _, ok := parseDate(v, nil); ok {
		m |= fitsDate | fitsTimestamp
	} else if _, _, ok := parseTimestamp(v, nil); ok {
		m |= fitsTimestamp
	}
	return m
}

// colGuess accumulates what the sampled values of one column fit.
type colGuess struct {
	fits   uint8
	seen   bool // a non-NULL value was sampled
	frac   int  // most fractional-second digits seen
	maxLen int
}

func (g *colGuess) add(v []byte) {
	if !g.seen {
		g.fits, g.seen = fitsAll, true
	}
	g.fits &= classify(v)
	g.maxLen = max(g.maxLen, len(v))
	if g.fits&fitsTimestamp != 0 {
		if _, f, ok := parseTimestamp(trimBlank(v), nil); ok {
			g.frac = max(g.frac, f)
		}
	}
}

func (g *colGuess) column(name string) csvColumn {
	c := csvColumn{name: name, inferred: true}
	switch {
	case !g.seen:
		// Only NULLs: text takes anything later rows hold.
	case g.fits&fitsBool != 0:
		c.kind, c.delta, c.mysql, c.sqlType = kindBool, "boolean", "tinyint(1)", "BOOLEAN"
		return c
	case g.fits&fitsLong != 0:
		c.kind, c.delta, c.mysql, c.sqlType = kindInt64, "long", "bigint", "BIGINT"
		c.min, c.max = math.MinInt64, math.MaxInt64
		return c
	case g.fits&fitsDouble != 0:
		c.kind, c.delta, c.mysql, c.sqlType = kindFloat64, "double", "double", "DOUBLE"
		return c
	case g.fits&fitsDate != 0:
		c.kind, c.delta, c.mysql, c.sqlType = kindDate, "date", "date", "DATE"
		return c
	case g.fits&fitsTimestamp != 0:
		c.kind, c.delta, c.mysql, c.sqlType = kindTimestamp, "timestamp", "datetime", "DATETIME"
		if p := min(g.frac, 6); p > 0 {
			c.mysql = fmt.Sprintf("datetime(%d)", p)
		}
		return c
	}
	// TEXT unless the sample already holds longer values; values longer than the
	// chosen type allows are errors, as for a declared column.
	c.kind, c.delta, c.mysql, c.sqlType, c.maxBytes = kindString, "string", "text", "TEXT", 1<<16-1
	if g.maxLen > c.maxBytes {
		c.mysql, c.sqlType, c.maxBytes = "longtext", "LONGTEXT", 0
	}
	return c
}

// sampleRow is one sampled record's fields, NULLs as nil.
type sampleRow [][]byte

// sampleRows copies the chunk's records out of the scanner's buffer.
func (r *csvSource) sampleRows(ch *chunk) []sampleRow {
	rows := make([]sampleRow, ch.records())
	nc := len(ch.spans) / max(ch.records(), 1)
	for i := range rows {
		row := make(sampleRow, nc)
		for j := range row {
			sp := ch.spans[i*nc+j]
			v := ch.bytes(r.sc.buf, sp)
			if sp.quoted() || !r.isNullText(v) {
				row[j] = append([]byte{}, v...)
			}
		}
		rows[i] = row
	}
	return rows
}

// isNullText reports whether an unquoted field is NULL.
func (r *csvSource) isNullText(v []byte) bool {
	if r.cfg.hasNull {
		return string(v) == r.cfg.null
	}
	return len(v) == 0
}

// decideColumns sets r.cols from the sample and reports whether the first row is a header.
func (r *csvSource) decideColumns(rows []sampleRow) (bool, error) {
	if len(rows) == 0 {
		if r.cfg.cols != nil {
			r.cols = r.cfg.cols
			return false, nil
		}
		return false, fmt.Errorf("%s is empty; a file with no header line needs its columns given: columns='name TYPE, …'", r.sc.name)
	}
	first := rows[0]
	header := r.cfg.header == headerOn
	if r.cfg.cols != nil {
		r.cols = r.cfg.cols
		if r.cfg.header == headerAuto {
			header = givenHeader(first, r.cols)
		}
		return header, nil
	}
	guess := func(rows []sampleRow) []colGuess {
		g := make([]colGuess, len(first))
		for _, row := range rows {
			for j, v := range row {
				// An empty value is NULL in any column but a text one, so it says nothing.
				if len(trimBlank(v)) > 0 {
					g[j].add(v)
				}
			}
		}
		return g
	}
	var g []colGuess
	switch r.cfg.header {
	case headerOn:
		g = guess(rows[1:])
	case headerOff:
		g = guess(rows)
	default:
		g = guess(rows[1:])
		header = allText(first) && (anyTyped(g) || distinct(first))
		if !header {
			g = guess(rows)
		}
	}
	names := make([]string, len(first))
	for j := range names {
		if header {
			names[j] = strings.TrimSpace(string(first[j]))
			if !utf8.ValidString(names[j]) {
				return false, fmt.Errorf("%s line %d: the header is not valid UTF-8; convert the file to UTF-8 or give header=false", r.sc.name, r.sc.line)
			}
		}
	}
	names = uniqueNames(names)
	r.cols = make([]csvColumn, len(first))
	for j := range r.cols {
		r.cols[j] = g[j].column(names[j])
	}
	return header, nil
}

// allText reports whether every value of a row is non-empty and fits no type but text.
func allText(row sampleRow) bool {
	for _, v := range row {
		if len(trimBlank(v)) == 0 || classify(v) != 0 {
			return false
		}
	}
	return true
}

func anyTyped(g []colGuess) bool {
	for _, c := range g {
		if c.seen && c.fits != 0 {
			return true
		}
	}
	return false
}

func distinct(row sampleRow) bool {
	seen := map[string]bool{}
	for _, v := range row {
		k := strings.ToLower(strings.TrimSpace(string(v)))
		if seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}

// givenHeader decides header=auto when the columns are given: the first row is a header
// when it spells the given names, or when it is all text and a given column is not text.
func givenHeader(first sampleRow, cols []csvColumn) bool {
	same := true
	for j, v := range first {
		if !strings.EqualFold(strings.TrimSpace(string(v)), cols[j].name) {
			same = false
		}
	}
	if same {
		return true
	}
	if !allText(first) {
		return false
	}
	for _, c := range cols {
		if !c.isString() {
			return true
		}
	}
	return false
}

// uniqueNames fills in missing names (column1, column2, …) and makes duplicates unique
// ignoring case, as Delta column names must be.
func uniqueNames(names []string) []string {
	seen := map[string]bool{}
	out := make([]string, len(names))
	for j, n := range names {
		if n == "" {
			n = fmt.Sprintf("column%d", j+1)
		}
		base := n
		for k := 2; seen[strings.ToLower(n)]; k++ {
			n = fmt.Sprintf("%s_%d", base, k)
		}
		seen[strings.ToLower(n)] = true
		out[j] = n
	}
	return out
}
