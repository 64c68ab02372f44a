package table

import "github.com/lakehoused/lakehoused/storage"

// NewTestStore gives the external example package the in-memory store of the tests.
func NewTestStore() storage.Store { return newMemStore() }
