package txlog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lakehoused/lakehoused/storage"
)

const testSchema = `{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}},{"name":"p","type":"string","nullable":true,"metadata":{}}]}`

func createActions(conf map[string]string) []Action {
	return []Action{
		{Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		{MetaData: &Metadata{ID: "11111111-2222-3333-4444-555555555555", Format: Format{Provider: "parquet"}, SchemaString: testSchema, PartitionColumns: []string{"p"}, Configuration: conf}},
	}
}

func addFile(path string, rows int) Action {
	return Action{Add: &Add{
		Path: path, PartitionValues: map[string]string{"p": "x"}, Size: int64(100 + rows), ModificationTime: 1700000000000,
		DataChange: true, Stats: fmt.Sprintf(`{"numRecords":%d,"minValues":{"id":1},"maxValues":{"id":%d},"nullCount":{"id":0}}`, rows, rows),
	}}
}

func removeFile(path string) Action {
	ts := time.Now().UnixMilli() // recent, so checkpoints keep the tombstone
	return Action{Remove: &Remove{Path: path, DeletionTimestamp: &ts, DataChange: true}}
}

// newTable creates a table in a fresh temp dir and returns its store and committer.
func newTable(t *testing.T, conf map[string]string) (storage.Store, *StorageCommitter) {
	t.Helper()
	s, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := NewStorageCommitter()
	t.Cleanup(c.Wait) // before the temp dir goes: background checkpoints write into it
	if v, err := c.Commit(context.Background(), NewLog(s), -1, createActions(conf)); err != nil || v != 0 {
		t.Fatalf("create: v=%d err=%v", v, err)
	}
	return s, c
}

func mustCommit(t *testing.T, c Committer, s storage.Store, read int64, actions ...Action) int64 {
	t.Helper()
	v, err := c.Commit(context.Background(), NewLog(s), read, actions)
	if err != nil {
		t.Fatalf("commit at read version %d: %v", read, err)
	}
	return v
}

func paths(files []*Add) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Path
	}
	return out
}
