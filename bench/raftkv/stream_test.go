package raftkv

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/client"
)

// The Go client pipelines over ProposeBatches against raftkv as against
// epaxosd: many concurrent writes through a follower (forwarded) and the
// leader all go over the stream, each answered with its own result, and
// read back through another node.
func TestProposeBatchesCarriesConcurrentRequestsThroughEveryNode(t *testing.T) {
	c := newCluster(t, "mem")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := newClient(t, c.addrs()...).Propose(ctx, client.Write, "warm", []byte("1")); err != nil {
		t.Fatal(err)
	}
	for i, addr := range c.addrs() {
		ci := newClient(t, addr)
		// Until its connection is up the client sends unary calls; after
		// one answer it is.
		if _, err := ci.Propose(ctx, client.Write, "warm", []byte("2")); err != nil {
			t.Fatal(err)
		}
		before := ci.Stats()
		const workers, each = 16, 8
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range each {
					key := fmt.Sprintf("n%d-w%d-%d", i, w, j)
					if _, err := ci.Propose(ctx, client.Write, key, []byte(key)); err != nil {
						errs <- fmt.Errorf("write %s through %s: %w", key, c.peers[i].ID, err)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if s := ci.Stats(); s.StreamAttempts-before.StreamAttempts != workers*each || s.UnaryAttempts != before.UnaryAttempts {
			t.Fatalf("through %s: %+v after %+v, want all %d requests on the stream", c.peers[i].ID, s, before, workers*each)
		}
		reader := newClient(t, c.addrs()[(i+1)%3])
		key := fmt.Sprintf("n%d-w3-5", i)
		if got, err := reader.Propose(ctx, client.Read, key, nil); err != nil || string(got) != key {
			t.Fatalf("read %s = %q, %v", key, got, err)
		}
	}
}
