package daemon

import (
	"context"
	"fmt"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/session"
)

// replayInto rebuilds a fresh state machine h (and the session table) by
// applying, in their original order, the commands of every instance in the
// executed log. The state machine is deterministic, so it ends where the
// replica's did: a restarted replica answers reads as before.
func replayInto(ctx context.Context, h *plugin.Host, sessions *session.Table, st replica.HardState) error {
	if len(st.Executed) == 0 {
		return nil
	}
	commands := make(map[replica.InstanceID]*replica.Payload, len(st.Instances))
	for _, rec := range st.Instances {
		if rec.Phase == replica.Committed {
			commands[rec.ID] = rec.Command
		}
	}
	var batch []session.Command
	for i, id := range st.Executed {
		p := commands[id]
		if p == nil {
			return &logError{fmt.Errorf("replay: executed instance %v has no committed record", id)}
		}
		batch = appendCommands(batch, replica.Execution{Instance: id, Commands: p.Commands})
		if len(batch) >= maxApplyBatch || i == len(st.Executed)-1 {
			if err := applyCommands(ctx, h, sessions, batch); err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			batch = batch[:0]
		}
	}
	return nil
}
