// Package testdata locates the shared test data (../shared/testdata: Delta Acceptance Tests,
// ML datasets, intents) for the tests of every package.
package testdata

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the shared test data folder: $LAKEHOUSED_TESTDATA, or shared/testdata in the
// nearest parent directory that has one (a clone and its worktrees sit beside shared/). The
// test fails when there is none, because a skipped compatibility test proves nothing.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("LAKEHOUSED_TESTDATA"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		cand := filepath.Join(dir, "shared", "testdata")
		if st, err := os.Stat(filepath.Join(cand, "dat")); err == nil && st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("shared test data not found: set LAKEHOUSED_TESTDATA to the folder holding dat/")
		}
		dir = parent
	}
}

// DAT returns the Delta Acceptance Tests folder (Dir/dat).
func DAT(t testing.TB) string { return filepath.Join(Dir(t), "dat") }
