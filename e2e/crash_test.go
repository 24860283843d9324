package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/client"
)

// children returns the pids of the processes whose parent is pid.
func children(t *testing.T, pid int) []int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces: split after ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			out = append(out, child)
		}
	}
	return out
}

// waitGone waits until none of pids exists any more.
func waitGone(t *testing.T, pids []int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, pid := range pids {
		for {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("process %d (a plugin of a killed replica) still alive after %v", pid, within)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// killAll SIGKILLs the given replicas and checks their plugins follow.
func (c *cluster) killAndReap(ids ...int) {
	c.t.Helper()
	var plugins []int
	for _, i := range ids {
		plugins = append(plugins, children(c.t, c.procs[i].Process.Pid)...)
	}
	for _, i := range ids {
		c.kill(i)
	}
	waitGone(c.t, plugins, 5*time.Second)
}

// writeMany writes keys prefix-g-j = j from `writers` goroutines, each
// through its own client starting at a different replica, and returns the
// acknowledged writes. Every write must be acknowledged within its timeout.
func (c *cluster) writeMany(prefix string, writers, perWriter int, hot string) map[string]string {
	c.t.Helper()
	var mu sync.Mutex
	acked := make(map[string]string)
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		addrs := append(append([]string(nil), c.addrs[g%len(c.addrs):]...), c.addrs[:g%len(c.addrs)]...)
		cl := c.client(addrs...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perWriter; j++ {
				key := fmt.Sprintf("%s-%d-%d", prefix, g, j)
				val := fmt.Sprintf("v%d", j)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := cl.Propose(ctx, client.Write, key, []byte(val))
				if err == nil && hot != "" && j%5 == 0 {
					// A key every writer touches: its instances depend on
					// each other across replicas.
					_, err = cl.Propose(ctx, client.Write, hot, []byte(key))
				}
				cancel()
				if err != nil {
					c.t.Errorf("write %s: %v", key, err)
					return
				}
				mu.Lock()
				acked[key] = val
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acked
}

// readAll reads every key of want from the replica at addr (8 readers).
func (c *cluster) readAll(addr string, want map[string]string) map[string]string {
	c.t.Helper()
	cl := c.client(addr)
	keys := make(chan string, len(want))
	for k := range want {
		keys <- k
	}
	close(keys)
	var mu sync.Mutex
	got := make(map[string]string, len(want))
	var wg sync.WaitGroup
	for r := 0; r < 8; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				v, err := cl.Propose(ctx, client.Read, k, nil)
				cancel()
				if err != nil {
					c.t.Errorf("read %s at %s: %v", k, addr, err)
					return
				}
				mu.Lock()
				got[k] = string(v)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return got
}

// expectAll asserts that every acknowledged write reads back at every
// listed replica.
func (c *cluster) expectAll(want map[string]string, replicas ...int) {
	c.t.Helper()
	for _, i := range replicas {
		got := c.readAll(c.addrs[i], want)
		missing := 0
		for k, v := range want {
			if got[k] != v {
				if missing < 5 {
					c.t.Errorf("replica %s: %s = %q, want acknowledged %q", names[i], k, got[k], v)
				}
				missing++
			}
		}
		if missing > 0 {
			c.t.Errorf("replica %s lost %d of %d acknowledged writes", names[i], missing, len(want))
		}
	}
}

// Nothing acknowledged is lost: 500 acknowledged writes survive SIGKILL of
// every replica at once; then a replica killed alone while the others keep
// writing catches up after its restart and reads what they read.
func TestE2E_SIGKILLEveryReplicaThenRestart_AcknowledgedWritesSurvive(t *testing.T) {
	c := startCluster(t, 3, "plugin \"kv\" {}\n")
	acked := c.writeMany("a", 5, 100, "hot")
	if len(acked) != 500 {
		t.Fatalf("%d writes acknowledged, want 500", len(acked))
	}
	c.killAndReap(0, 1, 2)
	for i := range c.procs {
		c.start(i)
	}
	c.waitReady()
	c.expectAll(acked, 0, 1, 2)

	// One replica down while the others accept more writes.
	c.killAndReap(2)
	live := &cluster{t: t, addrs: c.addrs[:2]}
	more := live.writeMany("b", 4, 25, "hot")
	c.start(2)
	c.waitReady()
	for k, v := range more {
		acked[k] = v
	}
	c.expectAll(acked, 2, 0)
	hot := make(map[string]string)
	for i := range c.addrs {
		hot[names[i]] = c.readAll(c.addrs[i], map[string]string{"hot": ""})["hot"]
	}
	if hot["alpha"] != hot["bravo"] || hot["alpha"] != hot["charlie"] {
		t.Errorf("replicas disagree on the hot key after catch-up: %v", hot)
	}
}

// Five replicas keep serving while two are SIGKILLed in the middle of a
// conflicting load: every client call returns (the instances the dead
// replicas led are recovered by the others), every acknowledged write is
// readable from the survivors, and the killed replicas catch up on restart.
func TestE2E_FiveReplicasKeepServingWhenTwoAreSIGKILLedMidLoad(t *testing.T) {
	c := startCluster(t, 5, "plugin \"kv\" {}\n")
	var acked map[string]string
	done := make(chan struct{})
	go func() {
		defer close(done)
		acked = c.writeMany("m", 8, 40, "hot")
	}()
	// Kill two replicas once the load is under way.
	probe := c.client(c.addrs[0])
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := propose(t, probe, client.Read, "hot", "")
		if v != "" || time.Now().After(deadline) {
			break
		}
	}
	c.killAndReap(3, 4)
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("clients still waiting 3 minutes after two replicas were killed")
	}
	if len(acked) != 8*40 {
		t.Fatalf("%d of %d writes acknowledged", len(acked), 8*40)
	}
	c.expectAll(acked, 0, 1, 2)
	c.start(3)
	c.start(4)
	c.waitReady()
	c.expectAll(acked, 3, 4)
}
