package plugin

import (
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// parentPoll is how often a plugin checks that epaxosd is still alive.
const parentPoll = 500 * time.Millisecond

// exitWithParent ends the plugin process when the epaxosd that started it
// is gone. go-plugin stops its plugins on a clean shutdown, but a daemon
// killed with SIGKILL (or a crash) runs no shutdown code; without this its
// plugins would live on as orphans, one more after every such restart. An
// orphan is re-parented, so its parent pid changes.
func exitWithParent(log hclog.Logger) {
	parent := os.Getppid()
	for {
		time.Sleep(parentPoll)
		if os.Getppid() != parent {
			log.Warn("epaxosd is gone; the plugin exits", "parent", parent)
			os.Exit(1)
		}
	}
}
