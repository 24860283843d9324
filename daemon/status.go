package daemon

import (
	"fmt"
	"slices"

	"github.com/epaxosd/epaxosd/replica"
)

// statusEvery is how often, in core ticks, the core loop reports the
// replica's progress: at debug level always, and as a warning when
// execution has waited on the same instance since the previous report.
const statusEvery = 500 // 5 s

// statusReporter remembers the previous report to tell a stall from
// progress.
type statusReporter struct {
	ticks      int
	lastWait   replica.InstanceID
	lastFront  []uint64
	lastApply  uint64
	stallCount int
}

// tick is called on every core tick; every statusEvery ticks it logs.
func (d *Daemon) reportStatus() {
	s := &d.status
	s.ticks++
	if s.ticks%statusEvery != 0 {
		return
	}
	st := d.core.Status()
	d.applier.mu.Lock()
	applied, queued, spilled, plugin := d.applier.applied, len(d.applier.queue), d.applier.spilled, d.applier.host != nil
	d.applier.mu.Unlock()
	args := []any{
		"instances", st.Instances, "committed", st.Committed, "executed", st.Executed,
		"frontier", fmt.Sprint(st.Frontier), "watched", st.Watched, "recovering", st.Recovering,
		"applied", applied, "apply_queue", queued, "spilled", spilled, "plugin_up", plugin,
	}
	var wait replica.InstanceID
	switch {
	case len(st.Blocked) > 0:
		wait = st.Blocked[0]
	case len(st.ExecWaiting) > 0:
		wait = st.ExecWaiting[0]
	}
	stalled := wait != (replica.InstanceID{}) && wait == s.lastWait && slices.Equal(st.Frontier, s.lastFront)
	if len(st.ExecWaiting) > 0 {
		args = append(args, "first_unexecuted", d.core.Describe(st.ExecWaiting[0]))
	}
	if stalled {
		s.stallCount++
		d.log.Warn("execution is waiting", append(args, "blocked_on_uncommitted", fmt.Sprint(st.Blocked),
			"blocked_on_unexecuted", fmt.Sprint(st.ExecWaiting), "reports", s.stallCount)...)
	} else {
		s.stallCount = 0
		d.log.Debug("status", append(args, "blocked_on_uncommitted", fmt.Sprint(st.Blocked),
			"blocked_on_unexecuted", fmt.Sprint(st.ExecWaiting))...)
	}
	if applied == s.lastApply && queued > 0 && plugin {
		d.log.Warn("state machine made no progress since the last report", args...)
	}
	s.lastWait, s.lastFront, s.lastApply = wait, st.Frontier, applied
}
