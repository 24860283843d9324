package daemon

import (
	"context"
	"fmt"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/session"
)

// replayFrom applies the executed log from position from to position upTo
// (1-based, inclusive) to h, which has applied everything before from, with
// the session table. Replaying from 1 rebuilds a fresh state machine: it is
// deterministic, so it ends where the replica's did, and a restarted
// replica answers reads as before.
func replayFrom(ctx context.Context, h *plugin.Host, sessions *session.Table, st replica.HardState, from, upTo uint64) error {
	upTo = min(upTo, uint64(len(st.Executed)))
	if upTo < from {
		return nil
	}
	commands := make(map[replica.InstanceID]*replica.Payload, len(st.Instances))
	for _, rec := range st.Instances {
		if rec.Phase == replica.Committed {
			commands[rec.ID] = rec.Command
		}
	}
	var batch []session.Command
	for i := int(from - 1); i < int(upTo); i++ {
		id := st.Executed[i]
		p := commands[id]
		if p == nil {
			return &logError{fmt.Errorf("replay: executed instance %v has no committed record", id)}
		}
		batch = appendCommands(batch, replica.Execution{Instance: id, Commands: p.Commands})
		if len(batch) >= maxApplyBatch || i == int(upTo)-1 {
			if err := applyCommands(ctx, h, sessions, batch); err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			batch = batch[:0]
		}
	}
	return nil
}
