package system_test

import "time"

// sleepPastMillisecond makes the next commit's timestamp differ from the previous one's, so
// AS OF TIMESTAMP can tell them apart (commit timestamps have millisecond resolution).
func sleepPastMillisecond() { time.Sleep(20 * time.Millisecond) }
