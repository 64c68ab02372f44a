package txlog

import (
	"fmt"
	"slices"
	"strings"
)

// SupportedReaderFeatures are the reader table features (reader version 3) lakehoused
// reads correctly. timestampNtz only adds a column type, which the scan layer maps to an
// Arrow timestamp without zone; everything else changes how files or rows are located and
// is refused rather than read wrongly.
var SupportedReaderFeatures = []string{"timestampNtz"}

// MaxWriterVersion is the highest legacy writer version lakehoused writes to. Writer 2 adds
// appendOnly and invariants, which the table layer enforces; writer 3+ adds CHECK
// constraints, generated columns, column mapping, … which we would silently violate.
const MaxWriterVersion = 2

// CheckRead returns an error wrapping ErrUnsupportedFeature when reading a table with this
// protocol needs something lakehoused lacks.
func (p Protocol) CheckRead() error {
	switch p.MinReaderVersion {
	case 1:
		return nil
	case 2:
		return fmt.Errorf("%w: table needs Delta reader version 2 (column mapping); lakehoused reads version 1 and reader features %s", ErrUnsupportedFeature, strings.Join(SupportedReaderFeatures, ", "))
	case 3:
		var missing []string
		for _, f := range p.ReaderFeatures {
			if !slices.Contains(SupportedReaderFeatures, f) {
				missing = append(missing, f)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		return fmt.Errorf("%w: table needs reader features %s; lakehoused supports %s", ErrUnsupportedFeature, strings.Join(missing, ", "), strings.Join(SupportedReaderFeatures, ", "))
	}
	return fmt.Errorf("%w: table needs Delta reader version %d; lakehoused reads versions 1 and 3", ErrUnsupportedFeature, p.MinReaderVersion)
}

// CheckRead refuses what the protocol refuses, and also tables whose metadata turns column
// mapping on: Spark has written (3,7) protocols with an empty readerFeatures list while
// delta.columnMapping.mode is "name" (DAT iceberg_compat_v1), and reading such files by
// logical column name would return NULLs instead of an error.
func (s *Snapshot) CheckRead() error {
	if err := s.Protocol.CheckRead(); err != nil {
		return err
	}
	if m := s.Metadata.Configuration["delta.columnMapping.mode"]; m != "" && m != "none" {
		return fmt.Errorf("%w: table uses column mapping (delta.columnMapping.mode=%s); lakehoused reads columns by their logical names only", ErrUnsupportedFeature, m)
	}
	return nil
}

// CheckWrite returns an error wrapping ErrUnsupportedFeature when writing to a table with
// this protocol could break a rule lakehoused does not enforce.
func (p Protocol) CheckWrite() error {
	if err := p.CheckRead(); err != nil {
		return err
	}
	if p.MinWriterVersion > MaxWriterVersion {
		extra := ""
		if len(p.WriterFeatures) > 0 {
			extra = " (features " + strings.Join(p.WriterFeatures, ", ") + ")"
		}
		return fmt.Errorf("%w: table needs Delta writer version %d%s; lakehoused writes only up to version %d (appendOnly, invariants), so the table is read-only here", ErrUnsupportedFeature, p.MinWriterVersion, extra, MaxWriterVersion)
	}
	return nil
}
