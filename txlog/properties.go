package txlog

import "time"

// ParseInterval parses a Delta interval property value ("interval 30 days", "7 days",
// "interval 1 week"); ok is false when the value is not one.
func ParseInterval(s string) (d time.Duration, ok bool) { return parseInterval(s) }

// DeletedFileRetention is delta.deletedFileRetentionDuration (default one week): how long
// checkpoints keep tombstones, and so how far back the log alone knows which files were
// removed.
func DeletedFileRetention(conf map[string]string) time.Duration { return deletedFileRetention(conf) }
