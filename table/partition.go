package table

import (
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// hiveNull is the directory name Hive, Spark and every Delta writer use for a NULL
// partition value; readers take the value from the log, never from the path.
const hiveNull = "__HIVE_DEFAULT_PARTITION__"

// Layouts of partition values (Delta protocol "Partition Value Serialization").
const (
	dateLayout = "2006-01-02"
	// tsWriteLayout is the ISO-8601 UTC form the protocol recommends to modern writers.
	tsWriteLayout = "2006-01-02T15:04:05.000000Z"
	// ntzLayout is how timestamp_ntz partition values are written (no zone).
	ntzLayout = "2006-01-02 15:04:05.000000"
)

// partitionString serialises row i of a partition column. ok=false means NULL. Delta writes
// NULL as an empty string (or JSON null, which Spark writes and which decodes to "" in a
// map[string]string); a string partition value "" is therefore also NULL, as in Spark.
func partitionString(arr arrow.Array, i int) (s string, ok bool, err error) {
	if arr.IsNull(i) {
		return "", false, nil
	}
	switch a := arr.(type) {
	case *array.String:
		s = a.Value(i)
	case *array.LargeString:
		s = a.Value(i)
	case *array.Binary:
		s = string(a.Value(i))
	case *array.Int8:
		s = strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Int16:
		s = strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Int32:
		s = strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Int64:
		s = strconv.FormatInt(a.Value(i), 10)
	case *array.Float32:
		s = strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32)
	case *array.Float64:
		s = strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Boolean:
		s = strconv.FormatBool(a.Value(i))
	case *array.Date32:
		s = a.Value(i).ToTime().Format(dateLayout)
	case *array.Timestamp:
		tt := a.DataType().(*arrow.TimestampType)
		t := time.UnixMicro(toMicros(int64(a.Value(i)), tt.Unit)).UTC()
		if tt.TimeZone == "" {
			s = t.Format(ntzLayout)
		} else {
			s = t.Format(tsWriteLayout)
		}
	case *array.Decimal128:
		s = a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	default:
		return "", false, fmt.Errorf("table: cannot partition by a column of type %s", arr.DataType())
	}
	return s, s != "", nil
}

func toMicros(v int64, unit arrow.TimeUnit) int64 {
	switch unit {
	case arrow.Second:
		return v * 1e6
	case arrow.Millisecond:
		return v * 1e3
	case arrow.Nanosecond:
		return floorDiv(v, 1e3)
	}
	return v
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// parseTimestampValue reads a timestamp partition value in either protocol form: ISO-8601
// with a zone, or "YYYY-MM-DD HH:MM:SS[.ffffff]", taken as UTC (the writer's zone is not
// recorded; Spark writes in the session zone, UTC on every server we know of).
func parseTimestampValue(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	s = strings.TrimSuffix(s, "Z")
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", dateLayout} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("table: cannot read timestamp %q; want ISO-8601 (2026-11-26T10:00:00.000000Z) or 2026-11-26 10:00:00[.ffffff]", s)
}

// parsePartitionValue decodes a partition value string into the canonical comparison value
// of kind k (see valueKind): int64, float64, string, bool, []byte, int64 days, int64 µs or
// *big.Rat.
func parsePartitionValue(k valueKind, s string) (any, error) {
	switch k {
	case kindInt:
		return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	case kindFloat32:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 32)
		return f, err
	case kindFloat64:
		return strconv.ParseFloat(strings.TrimSpace(s), 64)
	case kindString:
		return s, nil
	case kindBinary:
		return []byte(s), nil
	case kindBool:
		return strconv.ParseBool(strings.TrimSpace(s))
	case kindDate:
		t, err := time.Parse(dateLayout, strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("table: cannot read date %q; want YYYY-MM-DD", s)
		}
		return floorDiv(t.Unix(), 86400), nil
	case kindTimestamp:
		t, err := parseTimestampValue(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		return t.UnixMicro(), nil
	case kindDecimal:
		r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
		if !ok {
			return nil, fmt.Errorf("table: cannot read decimal %q", s)
		}
		return r, nil
	}
	return nil, fmt.Errorf("table: partition values of this type are not supported")
}

// constantArray builds an n-row array of type dt holding the partition value s (NULL when
// s is empty), for materialising partition columns in scans.
func constantArray(b array.Builder, dt arrow.DataType, s string, present bool, n int) error {
	if !present || s == "" {
		b.AppendNulls(n)
		return nil
	}
	k := kindOfArrow(dt)
	v, err := parsePartitionValue(k, s)
	if err != nil {
		return err
	}
	b.Reserve(n)
	for range n {
		switch bb := b.(type) {
		case *array.StringBuilder:
			bb.Append(v.(string))
		case *array.BinaryBuilder:
			bb.Append(v.([]byte))
		case *array.Int8Builder:
			bb.Append(int8(v.(int64)))
		case *array.Int16Builder:
			bb.Append(int16(v.(int64)))
		case *array.Int32Builder:
			bb.Append(int32(v.(int64)))
		case *array.Int64Builder:
			bb.Append(v.(int64))
		case *array.Float32Builder:
			bb.Append(float32(v.(float64)))
		case *array.Float64Builder:
			bb.Append(v.(float64))
		case *array.BooleanBuilder:
			bb.Append(v.(bool))
		case *array.Date32Builder:
			bb.Append(arrow.Date32(v.(int64)))
		case *array.TimestampBuilder:
			bb.Append(arrow.Timestamp(v.(int64)))
		case *array.Decimal128Builder:
			dt := dt.(*arrow.Decimal128Type)
			num, err := decimal128.FromString(s, dt.Precision, dt.Scale)
			if err != nil {
				return fmt.Errorf("table: partition value %q does not fit %s: %w", s, dt, err)
			}
			bb.Append(num)
		default:
			return fmt.Errorf("table: cannot materialise partition column of type %s", dt)
		}
	}
	return nil
}

// escapePartitionPathValue applies Hive's path escaping (Spark's
// ExternalCatalogUtils.escapePathName) so any value is one safe directory name.
func escapePartitionPathValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7F || strings.IndexByte("\"#%'*/:=?\\{[]^", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// pathToURI turns a relative object key into the add.path URI form the protocol requires:
// percent-encoding of '%', spaces, controls and non-ASCII bytes, so that URL-decoding the
// path gives the key back.
func pathToURI(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c <= 0x20 || c >= 0x7F || strings.IndexByte("%\"#<>?\\^`{|}[]", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// FileKey resolves an add or remove path (a URI, relative or absolute) to a key in the
// table's store at storeURL; a path outside the table is an error.
func FileKey(path, storeURL string) (string, error) { return addPathToKey(path, storeURL) }

// addPathToKey resolves an add.path (a URI, relative or absolute) to a key in store.
func addPathToKey(path, storeURL string) (string, error) {
	if strings.Contains(path, "://") {
		root := strings.TrimSuffix(storeURL, "/") + "/"
		rest, ok := strings.CutPrefix(path, root)
		if !ok {
			return "", fmt.Errorf("table: data file %q lies outside the table at %s; only files below the table root can be read", path, storeURL)
		}
		path = rest
	}
	key, err := url.PathUnescape(path)
	if err != nil {
		return "", fmt.Errorf("table: data file path %q is not a valid URI: %w", path, err)
	}
	return key, nil
}
