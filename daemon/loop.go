package daemon

import (
	"context"
	"time"

	"github.com/epaxosd/epaxosd/replica"
)

// coreLoop is the only goroutine that drives the protocol core. Each turn
// waits for an input (a tick, a peer message, a proposal), then also takes
// every peer message and proposal already waiting (up to maxStepDrain), and
// then handles the one Ready they produced: one synced write and one send
// per turn, however much arrived while the previous turn was syncing. That
// is the daemon's group commit.
func (d *Daemon) coreLoop(ctx context.Context) error {
	ticker := time.NewTicker(TickInterval)
	defer ticker.Stop()
	inbox := d.transport.Inbox()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			d.core.Tick()
			d.reportStatus()
			d.metrics.tick(d.core.Counters(), d.core.Held())
		case m := <-inbox:
			d.step(m)
		case c := <-d.proposals:
			d.propose(c)
		case <-d.reserved.ready:
			d.core.SlotsReserved(d.reserved.load())
		}
	drain:
		for i := 1; i < maxStepDrain; i++ {
			select {
			case m := <-inbox:
				d.step(m)
			case c := <-d.proposals:
				d.propose(c)
			default:
				break drain
			}
		}
		if err := d.handleReady(ctx); err != nil {
			return err
		}
	}
}

func (d *Daemon) step(m replica.Message) {
	if err := d.core.Step(m); err != nil {
		d.log.Warn("rejected peer message", "error", err)
	}
}

// propose hands c to the core's gate and, when aggregating, every proposal
// already queued behind it: those arrived while the previous instances were
// in flight and share one instance. The gate holds back commands that
// interfere with this replica's own uncommitted instances (replica/hold.go)
// and batches them, up to maxProposal, when those commit.
func (d *Daemon) propose(c replica.Command) {
	batch := []replica.Command{c}
	for d.cfg.Aggregate && len(batch) < maxProposal {
		select {
		case more := <-d.proposals:
			batch = append(batch, more)
			continue
		default:
		}
		break
	}
	if err := d.core.Enqueue(batch); err != nil {
		// Commands are validated when they arrive, so this is a bug.
		d.log.Error("propose failed", "error", err)
	}
}

// handleReady takes the core's Ready, if any, and hands it to the
// persister, assigning its executions their executed-log positions. The
// executions also go to the applier at once: it may apply them while the
// persister writes them, and holds their results until it has (apply.go).
func (d *Daemon) handleReady(ctx context.Context) error {
	if !d.core.HasReady() {
		return nil
	}
	rd := d.core.Ready()
	if d.metrics != nil {
		d.metrics.ready(rd, d.core.Counters(), d.core.Held(), time.Now())
	}
	// A coordinator's own requests may leave before its records are
	// durable (replica/reserve.go); everything else waits for the persister.
	d.transport.Send(rd.Early)
	first := d.executed + 1
	d.executed += uint64(len(rd.Execute))
	if len(rd.Execute) > 0 {
		d.applier.enqueue(first, rd.Execute)
	}
	return d.persister.push(ctx, readyWork{rd: rd, firstExecuted: first})
}
