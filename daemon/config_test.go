package daemon

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/config"
	"github.com/epaxosd/epaxosd/replica"
)

func TestFromConfigPeerDelay(t *testing.T) {
	src := `name = "bravo"
emulated_peer_delay = { alpha = "30ms", bravo = "5ms", charlie = "0s", delta = "70ms" }
plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = "127.0.0.1:7001"
}
replica "bravo" {
  pid     = 1
  address = "127.0.0.1:7002"
}
replica "charlie" {
  pid     = 2
  address = "127.0.0.1:7003"
}
replica "delta" {
  pid     = 3
  address = "127.0.0.1:7004"
}
replica "echo" {
  pid     = 4
  address = "127.0.0.1:7005"
}
`
	c, err := config.Parse([]byte(src), filepath.Join(t.TempDir(), "epaxos.hcl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// By pid; this replica's own entry and zero delays are left out.
	want := map[replica.ReplicaID]time.Duration{0: 30 * time.Millisecond, 3: 70 * time.Millisecond}
	if got := FromConfig(c, "epaxosd", nil).PeerDelay; !reflect.DeepEqual(got, want) {
		t.Errorf("PeerDelay = %v, want %v", got, want)
	}
	c.EmulatedPeerDelay = nil
	if got := FromConfig(c, "epaxosd", nil).PeerDelay; got != nil {
		t.Errorf("PeerDelay without emulated_peer_delay = %v, want nil", got)
	}
}
