package daemon

import (
	"context"
	"fmt"

	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/session"
)

// replay rebuilds the state machine and the session table after a restart
// by applying, in their original order, the commands of every instance the
// replica executed before it stopped. The state machine is deterministic,
// so it ends where it was: a restarted replica answers reads as before.
func (d *Daemon) replay(ctx context.Context, st replica.HardState) error {
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
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := d.applier.apply(ctx, batch)
		batch = batch[:0]
		return err
	}
	for _, id := range st.Executed {
		p := commands[id]
		if p == nil {
			return fmt.Errorf("replay: executed instance %v has no committed record", id)
		}
		batch = appendCommands(batch, []replica.Execution{{Instance: id, Commands: p.Commands}})
		if len(batch) >= maxApplyBatch {
			if err := flush(); err != nil {
				return fmt.Errorf("replay: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	d.log.Info("state machine rebuilt from the executed log", "instances", len(st.Executed))
	return nil
}
