package txlog

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Stats is the decoded add.stats JSON: per-file row count and per-column bounds. Column
// maps mirror the schema (nested columns are nested maps); numbers are json.Number so
// 64-bit integers and decimals survive decoding exactly.
type Stats struct {
	NumRecords int64          `json:"numRecords"`
	MinValues  map[string]any `json:"minValues,omitempty"`
	MaxValues  map[string]any `json:"maxValues,omitempty"`
	NullCount  map[string]any `json:"nullCount,omitempty"`
	// TightBounds nil means true (the protocol's default). false means min/max are only
	// bounds (e.g. after deletion-vector deletes).
	TightBounds *bool `json:"tightBounds,omitempty"`
}

// ParseStats decodes an add.stats string. An empty string yields (nil, nil): the file has
// no statistics and must not be pruned.
func ParseStats(s string) (*Stats, error) {
	if s == "" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var st Stats
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("txlog: parse stats %.80q: %w", s, err)
	}
	return &st, nil
}

// String encodes the stats as the JSON string stored in add.stats.
func (s *Stats) String() string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return ""
	}
	return string(bytes.TrimRight(buf.Bytes(), "\n"))
}

// Tight reports whether min/max are exact (tightBounds absent or true). With loose bounds
// they still bound the values, but nullCount is only meaningful when 0 or numRecords.
func (s *Stats) Tight() bool { return s.TightBounds == nil || *s.TightBounds }
