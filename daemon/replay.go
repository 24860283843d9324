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
	return replayFrom(ctx, h, sessions, st, 1)
}

// replayFrom applies the executed log from position from (1-based) to its
// end to h, which has applied everything before it.
func replayFrom(ctx context.Context, h *plugin.Host, sessions *session.Table, st replica.HardState, from uint64) error {
	if uint64(len(st.Executed)) < from {
		return nil
	}
	commands := make(map[replica.InstanceID]*replica.Payload, len(st.Instances))
	for _, rec := range st.Instances {
		if rec.Phase == replica.Committed {
			commands[rec.ID] = rec.Command
		}
	}
	var batch []session.Command
	for i := int(from - 1); i < len(st.Executed); i++ {
		id := st.Executed[i]
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
