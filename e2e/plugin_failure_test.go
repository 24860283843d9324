package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/client"
)

// pluginOf waits for replica i's single plugin process and returns its pid.
func (c *cluster) pluginOf(i int, not int) int {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if kids := children(c.t, c.procs[i].Process.Pid); len(kids) == 1 && kids[0] != not {
			return kids[0]
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("replica %s has no single new plugin process: %v", names[i], children(c.t, c.procs[i].Process.Pid))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// When the plugin process dies (SIGKILL) or hangs (SIGSTOP), the replica
// notices, starts a new one, rebuilds it from the executed log and goes on:
// every result afterwards is right (nothing applied twice or skipped).
func TestE2E_PluginKilledOrHungIsRestartedAndRebuilt(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		t.Run(sig.String(), func(t *testing.T) {
			c := startCluster(t, 3, "plugin \"counter\" {}\n")
			cl := c.client(c.addrs[0])
			for i := 1; i <= 20; i++ {
				if got := propose(t, cl, client.Write, "n", "1"); got != fmt.Sprint(i) {
					t.Fatalf("increment %d returned %s", i, got)
				}
			}
			old := c.pluginOf(0, 0)
			if err := syscall.Kill(old, sig); err != nil {
				t.Fatal(err)
			}
			// Keep incrementing through the replica whose plugin failed:
			// each call returns (after the restart) with the right total.
			for i := 21; i <= 40; i++ {
				if got := propose(t, cl, client.Write, "n", "1"); got != fmt.Sprint(i) {
					t.Fatalf("after %s of the plugin, increment %d returned %s", sig, i, got)
				}
			}
			if now := c.pluginOf(0, old); now == old {
				t.Fatalf("plugin %d was not replaced", old)
			}
			for _, addr := range c.addrs {
				if got := propose(t, c.client(addr), client.Read, "n", ""); got != "40" {
					t.Errorf("replica %s reads %s, want 40", addr, got)
				}
			}
			if !strings.Contains(c.logs[0].String(), "state machine plugin restarted") {
				t.Errorf("replica log does not report the restart:\n%s", c.logs[0].String())
			}
		})
	}
}
