package cluster

import (
	"context"
	"fmt"
	"testing"

	"github.com/lakehoused/lakehoused/txlog"
)

// BenchmarkCommit measures one commit through a node (a cluster of one on the local disk)
// against put-if-absent alone.
func BenchmarkCommit(b *testing.B) {
	for _, through := range []string{"storage", "raft"} {
		b.Run(through, func(b *testing.B) {
			c := newCluster(b, 1)
			store := c.shared
			if through == "raft" {
				store = c.nodes[0].Wrap(c.shared)
			}
			create(b, c.nodes[0], c.shared)
			log := txlog.NewLog(store)
			com := txlog.NewStorageCommitter()
			com.CheckpointInterval = 1 << 40
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if _, err := com.Commit(ctx, log, int64(i), []txlog.Action{add(fmt.Sprintf("f%d", i))}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
