package sim

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/epaxosd/epaxosd/replica"
)

// Invariant 4: the client history is linearizable with respect to a
// sequential key-value store, checked by porcupine per key (operations on
// different keys commute, so the history is linearizable iff each key's is).
//
// The history holds every request a client got a result for, with the
// virtual times it was issued and answered. A request the client gave up on
// has an unknown outcome for the client, but the check runs once the run is
// quiescent (every replica executed every instance anyone knows), so the
// replicas know it: a write or delete that no replica ever applied never
// took effect and is left out; one that was applied took effect no later
// than the first time any replica applied it (anything issued after that is
// proposed after it committed, so it is ordered after it everywhere), which
// is taken as its return time. A read with unknown outcome changes nothing
// and is left out. (Leaving such requests open until the end of the history
// would also be sound, but makes porcupine's search blow up on a hot key.)

// kvInput is a history operation's input.
type kvInput struct {
	Key    string
	Access replica.Access
	Value  string
	Req    cmdKey
}

// kvOutput is a history operation's output: a read's value.
type kvOutput struct {
	Value   string
	Unknown bool
}

// kvModel is the sequential specification: per key, a string ("" when
// absent, which kv reads the same as empty).
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).Key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range sortedKeys(byKey) {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, st := input.(kvInput), state.(string)
		switch in.Access {
		case replica.Write:
			return true, in.Value
		case replica.Delete:
			return true, ""
		}
		out := output.(kvOutput)
		return out.Unknown || out.Value == st, st
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		var s string
		switch in.Access {
		case replica.Write:
			s = fmt.Sprintf("%v write(%s, %q)", in.Req, in.Key, in.Value)
		case replica.Delete:
			s = fmt.Sprintf("%v delete(%s)", in.Req, in.Key)
		default:
			s = fmt.Sprintf("%v read(%s) -> %q", in.Req, in.Key, out.Value)
		}
		if out.Unknown {
			s += " [outcome unknown]"
		}
		return s
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state.(string)) },
}

// history builds the porcupine history of the run.
func (s *Sim) history() []porcupine.Operation {
	end := s.sched.now + 1
	var h []porcupine.Operation
	for _, o := range s.ops {
		in := kvInput{Key: o.cmd.Key, Access: o.cmd.Access, Value: string(o.cmd.Value), Req: o.key()}
		switch {
		case o.status == opOK:
			h = append(h, porcupine.Operation{ClientId: o.client.index, Input: in, Call: o.call,
				Output: kvOutput{Value: o.output}, Return: o.ret})
		case o.cmd.Access != replica.Read:
			ret, applied := s.firstApplied[o.key()]
			switch {
			case !applied && s.quiescent:
				continue
			case !applied:
				ret = end
			}
			h = append(h, porcupine.Operation{ClientId: o.client.index, Input: in, Call: o.call,
				Output: kvOutput{Unknown: true}, Return: ret})
		}
	}
	return h
}

// checkLinearizable checks invariant 4 twice, independently:
//
//   - the witness: the replicas agree on every key's order of writes and on
//     the place of every read among them (invariant 3), so a correct run has
//     a canonical linearization, replica 0's apply order. It is checked
//     against real time (if A returned before B was issued, A is earlier)
//     and against the values reads returned. This is exact, cheap, and
//     stronger than linearizability: EPaxos orders a command after every
//     interfering command that completed before it was proposed, so a
//     witness failure is a protocol bug even if another order would fit;
//   - porcupine, over the same history, with a timeout.
//
// A witness failure fails the run (with porcupine's visualisation); so does
// porcupine finding the history illegal when the witness holds (one of the
// checks is wrong). A porcupine timeout after the witness held is not a
// failure: the witness is a linearization.
func (s *Sim) checkLinearizable() {
	h := s.history()
	timeout := s.opts.LinearizabilityTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	if msg := s.checkWitness(); msg != "" {
		res, info := porcupine.CheckOperationsVerbose(kvModel, h, min(timeout, 5*time.Second))
		s.fail("4. linearizability", "the replicas' execution order is not a linearization of the client history (porcupine: %s):\n%s", res, msg)
		if path, err := s.visualize(info); err != nil {
			s.failure.Detail += fmt.Sprintf("\n(could not write the visualisation: %v)", err)
		} else {
			s.failure.Visualization = path
		}
		return
	}
	// The plain check is much cheaper than the verbose one, which is only
	// needed to draw a failure.
	switch porcupine.CheckOperationsTimeout(kvModel, h, timeout) {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		s.porcupineTimeouts++
		return
	}
	res, info := porcupine.CheckOperationsVerbose(kvModel, h, timeout)
	detail := s.badKey(h, timeout)
	s.fail("4. linearizability", "porcupine finds the client history not linearizable (%s), yet the execution order is a valid linearization: one of the checks is wrong\n%s", res, detail)
	if path, err := s.visualize(info); err == nil {
		s.failure.Visualization = path
	}
}

// checkWitness checks replica 0's apply order as a linearization of the
// client history (see checkLinearizable) and returns what is wrong, or "".
func (s *Sim) checkWitness() string {
	// pos: writes and deletes of a key at even positions 2k (the k-th
	// write, from 1), a read at 2w+1 if it follows w writes.
	type point struct {
		pos   int
		value string // a write's value ("" for a delete); a read's expected value
	}
	points := make(map[cmdKey]point)
	writes := make(map[string]int)
	last := make(map[string]string)
	for _, k := range s.nodes[0].applied {
		cmd := s.issued[k]
		if cmd.Access == replica.Read {
			points[k] = point{pos: 2*writes[cmd.Key] + 1, value: last[cmd.Key]}
			continue
		}
		writes[cmd.Key]++
		last[cmd.Key] = string(cmd.Value)
		points[k] = point{pos: 2 * writes[cmd.Key], value: last[cmd.Key]}
	}
	type entry struct {
		op       *op
		call     int64
		ret      int64
		pos      int
		isRead   bool
		describe string
	}
	byKey := make(map[string][]entry)
	for _, o := range s.ops {
		p, applied := points[o.key()]
		e := entry{op: o, call: o.call, pos: p.pos, isRead: o.cmd.Access == replica.Read}
		switch {
		case o.status == opOK:
			if !applied {
				return fmt.Sprintf("%v completed but replica 0 never applied it", o)
			}
			if e.isRead && o.output != p.value {
				return fmt.Sprintf("%v returned %q, but in replica 0's order it follows %d writes of %s, the last leaving %q",
					o, o.output, p.pos/2, o.cmd.Key, p.value)
			}
			e.ret = o.ret
		case !e.isRead && applied:
			e.ret = s.firstApplied[o.key()] // outcome unknown to the client
		default:
			continue
		}
		byKey[o.cmd.Key] = append(byKey[o.cmd.Key], e)
	}
	for _, key := range sortedKeys(byKey) {
		es := byKey[key]
		for _, a := range es {
			for _, b := range es {
				if a.ret >= b.call {
					continue // not before b in real time
				}
				if a.pos < b.pos || a.isRead && b.isRead && a.pos == b.pos {
					continue
				}
				return fmt.Sprintf("real-time order broken on key %q: %v (issued t=%d.%d, done t=%d.%d) finished before %v (issued t=%d.%d) began, "+
					"yet replica 0 orders it after (positions %d and %d: write k at 2k, a read after w writes at 2w+1)",
					key, a.op, a.call/TickUnits, a.call%TickUnits, a.ret/TickUnits, a.ret%TickUnits,
					b.op, b.call/TickUnits, b.call%TickUnits, a.pos, b.pos)
			}
		}
	}
	return ""
}

// badKey finds the first key whose history alone is not linearizable and
// lists its operations.
func (s *Sim) badKey(h []porcupine.Operation, timeout time.Duration) string {
	for _, part := range kvModel.Partition(h) {
		if porcupine.CheckOperationsTimeout(kvModel, part, timeout) == porcupine.Ok {
			continue
		}
		part = slices.Clone(part)
		slices.SortStableFunc(part, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		var b strings.Builder
		fmt.Fprintf(&b, "key %q, %d operations (times in ticks):\n", part[0].Input.(kvInput).Key, len(part))
		for i, op := range part {
			if i == 60 {
				fmt.Fprintf(&b, "  ... and %d more\n", len(part)-i)
				break
			}
			ret := fmt.Sprintf("%d.%d", op.Return/TickUnits, op.Return%TickUnits)
			if op.Output.(kvOutput).Unknown {
				ret = "?"
			}
			fmt.Fprintf(&b, "  [%d.%d, %s] %s\n", op.Call/TickUnits, op.Call%TickUnits, ret,
				kvModel.DescribeOperation(op.Input, op.Output))
		}
		return b.String()
	}
	return "(no single key fails on its own)"
}

// visualize writes porcupine's HTML visualisation and returns its path.
func (s *Sim) visualize(info porcupine.LinearizationInfo) (string, error) {
	dir := s.opts.ArtifactsDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "epaxos-sim-"); err != nil {
			return "", err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := fmt.Sprintf("linearizability-N%d-%s-seed%d.html", s.p.N, s.p.Mix, s.seed)
	path := filepath.Join(dir, name)
	if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
		return "", err
	}
	return path, nil
}
