package daemon

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/session"
)

// maxApplyBatch bounds the commands sent to the plugin in one Apply.
const maxApplyBatch = 4096

// applier hands executed commands to the state machine in execution order,
// batching whatever has accumulated, and records each result in the session
// table, which answers the waiting clients.
type applier struct {
	in       chan []replica.Execution
	host     *plugin.Host
	sessions *session.Table
	log      hclog.Logger
}

// run applies until ctx ends or the state machine fails; a failure is
// returned because the replica cannot execute further without it.
func (a *applier) run(ctx context.Context) error {
	for {
		var first []replica.Execution
		select {
		case <-ctx.Done():
			return nil
		case first = <-a.in:
		}
		cmds := appendCommands(nil, first)
	drain:
		for len(cmds) < maxApplyBatch {
			select {
			case more := <-a.in:
				cmds = appendCommands(cmds, more)
			default:
				break drain
			}
		}
		if err := a.apply(ctx, cmds); err != nil {
			return err
		}
	}
}

func appendCommands(cmds []session.Command, execs []replica.Execution) []session.Command {
	for _, e := range execs {
		for _, c := range e.Commands {
			cmds = append(cmds, session.Command{
				Client: c.ClientID, Seq: c.Seq,
				Cmd: plugin.Command{Access: plugin.Access(c.Access), Key: []byte(c.Key), Value: c.Value},
			})
		}
	}
	return cmds
}

func (a *applier) apply(ctx context.Context, cmds []session.Command) error {
	slots, batch := a.sessions.Filter(cmds)
	var results []plugin.Result
	if len(batch) > 0 {
		var err error
		results, err = a.host.Apply(ctx, batch)
		if err != nil {
			if ctx.Err() != nil {
				return nil // shutting down
			}
			return fmt.Errorf("state machine: %w", err)
		}
	}
	a.sessions.Record(cmds, slots, results)
	if skipped := len(cmds) - len(batch); skipped > 0 {
		a.log.Debug("skipped duplicate commands", "count", skipped)
	}
	return nil
}
