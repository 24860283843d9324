//go:build unix

package plugin

import (
	"errors"
	"syscall"
	"testing"
)

func TestClose_KillsThePluginProcess(t *testing.T) {
	h, err := Launch(HostConfig{Name: "counter", Command: pluginBinary(t, "epaxos-counter"), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	rc := h.client.ReattachConfig()
	if rc == nil || rc.Pid <= 0 {
		h.Close()
		t.Fatalf("no pid for the plugin process: %+v", rc)
	}
	if err := syscall.Kill(rc.Pid, 0); err != nil {
		h.Close()
		t.Fatalf("plugin process %d not running before Close: %v", rc.Pid, err)
	}
	h.Close()
	// Close returns after the process has been reaped, so the pid is gone.
	if err := syscall.Kill(rc.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("signal 0 to plugin process %d after Close: %v, want ESRCH", rc.Pid, err)
	}
}
