package testdata

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Canonical renders a value so that the same datum compares equal whether it came as MySQL
// text, a Go value from a driver, or an Arrow value: numbers as exact rationals of their
// shortest decimal form, times in UTC with microseconds, JSON re-encoded with sorted keys.
func Canonical(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.000000")
	case []byte:
		return canonicalString(string(x))
	case string:
		return canonicalString(x)
	case bool:
		if x {
			return "1"
		}
		return "0"
	case float32:
		return canonicalString(strconv.FormatFloat(float64(x), 'g', -1, 32))
	case float64:
		return canonicalString(strconv.FormatFloat(x, 'g', -1, 64))
	}
	return canonicalString(fmt.Sprint(v))
}

func canonicalString(s string) string {
	if r, ok := new(big.Rat).SetString(s); ok && s != "" && !strings.ContainsAny(s, "/ ") {
		return r.RatString()
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format("2006-01-02 15:04:05.000000")
		}
	}
	if (strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")) && json.Valid([]byte(s)) {
		var x any
		_ = json.Unmarshal([]byte(s), &x)
		b, _ := json.Marshal(x)
		return string(b)
	}
	return s
}
