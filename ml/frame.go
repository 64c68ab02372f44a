package ml

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Kind is the type of a column: numeric (float64, NaN is NULL) or string (with validity).
type Kind string

const (
	Numeric Kind = "numeric"
	String  Kind = "string"
)

// Column is one named column of a Frame. A numeric column keeps its values in Num with NaN for
// NULL; a string column keeps them in Str, with Valid[i] false for NULL (a nil Valid means no
// NULLs). Exactly one of Num and Str is used, as Kind says.
type Column struct {
	Name  string
	Kind  Kind
	Num   []float64
	Str   []string
	Valid []bool
}

// NumericColumn returns a numeric column; NaN values are NULL.
func NumericColumn(name string, v []float64) Column {
	return Column{Name: name, Kind: Numeric, Num: v}
}

// StringColumn returns a string column; valid may be nil when there are no NULLs.
func StringColumn(name string, v []string, valid []bool) Column {
	return Column{Name: name, Kind: String, Str: v, Valid: valid}
}

// BoolColumn returns a bool column as a string column of "false" and "true", which makes a
// bool label a two-class classification label.
func BoolColumn(name string, v []bool, valid []bool) Column {
	s := make([]string, len(v))
	for i, b := range v {
		s[i] = strconv.FormatBool(b)
	}
	return StringColumn(name, s, valid)
}

// Len is the number of rows.
func (c *Column) Len() int {
	if c.Kind == String {
		return len(c.Str)
	}
	return len(c.Num)
}

// IsNull reports whether row i is NULL.
func (c *Column) IsNull(i int) bool {
	if c.Kind == String {
		return c.Valid != nil && !c.Valid[i]
	}
	return math.IsNaN(c.Num[i])
}

// Frame is a column-oriented table: feature columns and an optional label. All columns have
// the same length.
type Frame struct {
	Features []Column
	Label    *Column
}

// Rows is the number of rows.
func (f *Frame) Rows() int {
	if len(f.Features) > 0 {
		return f.Features[0].Len()
	}
	if f.Label != nil {
		return f.Label.Len()
	}
	return 0
}

// check verifies that every column is well formed and of the same length.
func (f *Frame) check() error {
	n := f.Rows()
	seen := map[string]bool{}
	for i := range f.Features {
		c := &f.Features[i]
		if err := c.check(n); err != nil {
			return err
		}
		if seen[c.Name] {
			return fmt.Errorf("ml: feature %q appears twice; give each column its own name", c.Name)
		}
		seen[c.Name] = true
	}
	if f.Label != nil {
		if err := f.Label.check(n); err != nil {
			return err
		}
	}
	return nil
}

func (c *Column) check(n int) error {
	switch c.Kind {
	case Numeric:
		if c.Str != nil {
			return fmt.Errorf("ml: numeric column %q has string values", c.Name)
		}
	case String:
		if c.Num != nil {
			return fmt.Errorf("ml: string column %q has numeric values", c.Name)
		}
		if c.Valid != nil && len(c.Valid) != len(c.Str) {
			return fmt.Errorf("ml: column %q has %d values and %d validity flags", c.Name, len(c.Str), len(c.Valid))
		}
	default:
		return fmt.Errorf("ml: column %q has kind %q; kinds are numeric, string", c.Name, c.Kind)
	}
	if c.Len() != n {
		return fmt.Errorf("ml: column %q has %d rows, other columns %d", c.Name, c.Len(), n)
	}
	return nil
}

// take returns the frame restricted to the given rows, in that order.
func (f *Frame) take(rows []int) *Frame {
	out := &Frame{Features: make([]Column, len(f.Features))}
	for i := range f.Features {
		out.Features[i] = f.Features[i].take(rows)
	}
	if f.Label != nil {
		l := f.Label.take(rows)
		out.Label = &l
	}
	return out
}

func (c *Column) take(rows []int) Column {
	out := Column{Name: c.Name, Kind: c.Kind}
	if c.Kind == String {
		out.Str = make([]string, len(rows))
		if c.Valid != nil {
			out.Valid = make([]bool, len(rows))
		}
		for i, r := range rows {
			out.Str[i] = c.Str[r]
			if c.Valid != nil {
				out.Valid[i] = c.Valid[r]
			}
		}
		return out
	}
	out.Num = make([]float64, len(rows))
	for i, r := range rows {
		out.Num[i] = c.Num[r]
	}
	return out
}

// ReadCSV reads a CSV file with a header row into a Frame. A column whose non-empty values all
// parse as numbers is numeric, otherwise string; empty fields are NULL. label names the label
// column ("" for none); labelKind forces its kind ("" infers it like any column).
func ReadCSV(r io.Reader, label string, labelKind Kind) (*Frame, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("ml: read csv: %w", err)
	}
	if len(recs) == 0 {
		return nil, errors.New("ml: read csv: no header row")
	}
	header, rows := recs[0], recs[1:]
	f := &Frame{}
	found := label == ""
	for j, name := range header {
		kind := Numeric
		if name == label && labelKind != "" {
			kind = labelKind
		}
		num := make([]float64, len(rows))
		if kind == Numeric {
			for i, rec := range rows {
				s := strings.TrimSpace(rec[j])
				if s == "" {
					num[i] = math.NaN()
					continue
				}
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					kind = String
					break
				}
				num[i] = v
			}
		}
		var c Column
		if kind == Numeric {
			c = NumericColumn(name, num)
		} else {
			str, valid := make([]string, len(rows)), make([]bool, len(rows))
			for i, rec := range rows {
				str[i], valid[i] = rec[j], rec[j] != ""
			}
			c = StringColumn(name, str, valid)
		}
		if name == label {
			found = true
			c := c
			f.Label = &c
			continue
		}
		f.Features = append(f.Features, c)
	}
	if !found {
		return nil, fmt.Errorf("ml: read csv: no column %q; columns are: %s", label, strings.Join(header, ", "))
	}
	return f, nil
}
