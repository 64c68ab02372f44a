package table

import (
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// pruneRowGroups returns the row groups of a file that may hold rows matching the scan's
// filter, judged by the Parquet column-chunk statistics. Statistics are trusted only where
// arrow-go vouches for them (StatsSet rejects writers with known-bad stats) and only for
// physical types whose order matches the Delta type's: integers, dates, INT64 timestamps
// and strings. A string max is treated as possibly truncated, as writers may cut them.
func (p *scanPlan) pruneRowGroups(pf *file.Reader, fileFields []pqarrow.SchemaField) []int {
	md := pf.MetaData()
	all := make([]int, 0, md.NumRowGroups())
	for rg := range md.NumRowGroups() {
		all = append(all, rg)
	}
	if len(p.rgChecks) == 0 {
		return all
	}
	type leaf struct {
		check *rgCheck
		col   int
		typ   arrow.DataType
	}
	var leaves []leaf
	for i := range p.rgChecks {
		c := &p.rgChecks[i]
		for j := range fileFields {
			f := &fileFields[j]
			if strings.EqualFold(f.Field.Name, c.name) && f.IsLeaf() {
				leaves = append(leaves, leaf{check: c, col: f.ColIndex, typ: f.Field.Type})
			}
		}
	}
	if len(leaves) == 0 {
		return all
	}
	kept := all[:0]
	for _, rg := range all {
		rgmd := md.RowGroup(rg)
		keep := true
		for _, l := range leaves {
			r := chunkRange(rgmd, l.col, l.typ, l.check.kind)
			if !canMatch(l.check.kind, l.check.cf, r) {
				keep = false
				break
			}
		}
		if keep {
			kept = append(kept, rg)
		}
	}
	return kept
}

// chunkRange reads what the statistics of one column chunk say, in canonical values.
func chunkRange(rgmd *metadata.RowGroupMetaData, col int, typ arrow.DataType, k valueKind) colRange {
	unknown := colRange{numRecords: -1}
	cc, err := rgmd.ColumnChunk(col)
	if err != nil {
		return unknown
	}
	if ok, err := cc.StatsSet(); err != nil || !ok {
		return unknown
	}
	st, err := cc.Statistics()
	if err != nil || st == nil {
		return unknown
	}
	r := unknown
	if st.HasNullCount() {
		r.numRecords, r.nullCount = rgmd.NumRows(), st.NullCount()
	}
	if !st.HasMinMax() || kindOfArrow(typ) != k {
		return r
	}
	switch s := st.(type) {
	case *metadata.Int32Statistics:
		if k == kindInt || k == kindDate {
			r.min, r.max = int64(s.Min()), int64(s.Max())
		}
	case *metadata.Int64Statistics:
		switch {
		case k == kindInt:
			r.min, r.max = s.Min(), s.Max()
		case k == kindTimestamp && cc.Type() == parquet.Types.Int64:
			unit := typ.(*arrow.TimestampType).Unit
			lo, hi := toMicros(s.Min(), unit), toMicros(s.Max(), unit)
			if unit == arrow.Nanosecond {
				hi++ // nanoseconds floored to µs: round the max up so it stays a bound
			}
			r.min, r.max = lo, hi
		}
	case *metadata.ByteArrayStatistics:
		if k == kindString {
			r.min, r.max, r.maxIsPrefix = string(s.Min()), string(s.Max()), true
		}
	}
	return r
}
