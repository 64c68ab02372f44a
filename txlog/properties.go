package txlog

import "time"

// ParseInterval parses a Delta interval property value ("interval 30 days", "7 days",
// "interval 1 week"); ok is false when the value is not one.
func ParseInterval(s string) (d time.Duration, ok bool) { return parseInterval(s) }
