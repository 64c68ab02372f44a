package storage

import (
	"fmt"
	"strings"
)

// TempPrefix marks in-flight files of Local; keys may not use it. List skips them, so a
// crash between writing a temp file and renaming it never shows a half-written object to
// readers.
const TempPrefix = ".tmp-"

// checkKey rejects keys that could escape the store's root or that the store cannot
// represent. Every Store implementation calls it so Mem and Local agree on what is valid.
func checkKey(op, key string) error {
	if key == "" {
		return fmt.Errorf("storage: %s: empty key", op)
	}
	if strings.HasPrefix(key, "/") || strings.Contains(key, "\\") || strings.Contains(key, "\x00") {
		return fmt.Errorf("storage: %s %q: key must be relative and slash-separated", op, key)
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "..":
			return fmt.Errorf("storage: %s %q: key must not contain \"..\" segments", op, key)
		case "", ".":
			return fmt.Errorf("storage: %s %q: key has an empty or \".\" segment", op, key)
		}
		if strings.HasPrefix(seg, TempPrefix) {
			return fmt.Errorf("storage: %s %q: names starting with %q are reserved for temp files", op, key, TempPrefix)
		}
	}
	return nil
}

// checkPrefix validates a List prefix: like a key, but may be empty or end in "/".
func checkPrefix(prefix string) error {
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		if prefix == "/" {
			return fmt.Errorf("storage: list %q: prefix must be relative", prefix)
		}
		return nil
	}
	// The last segment may be a partial name ("_delta_log/0000"), which checkKey accepts.
	return checkKey("list", p)
}
