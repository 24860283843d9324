package chaos

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/client"
)

// outcome is what a client learnt of an operation.
type outcome int

const (
	ok            outcome = iota // acknowledged, with the state machine's reply
	failed                       // definitely refused: it did not take effect
	indeterminate                // it may or may not have taken effect
)

func (o outcome) String() string {
	return [...]string{"ok", "failed", "indeterminate"}[o]
}

// op is one operation of the history. Times are nanoseconds since the
// history's start.
type op struct {
	Proc    int // porcupine's client id: a worker takes a new one after an indeterminate op, as in Jepsen
	Worker  int // -1 for the final reads
	Replica int // the replica a final read went through; -1 otherwise
	Access  client.Access
	Key     string
	Value   string // a write's value
	Call    int64
	Return  int64
	Output  string // a read's reply
	Outcome outcome
	Err     string
}

func (o op) String() string {
	var s string
	switch o.Access {
	case client.Write:
		s = fmt.Sprintf("write(%s, %q)", o.Key, o.Value)
	case client.Delete:
		s = fmt.Sprintf("delete(%s)", o.Key)
	default:
		s = fmt.Sprintf("read(%s)", o.Key)
		if o.Outcome == ok {
			s += fmt.Sprintf(" -> %q", o.Output)
		}
	}
	who := fmt.Sprintf("w%d/p%d", o.Worker, o.Proc)
	if o.Replica >= 0 {
		who = fmt.Sprintf("final@r%d/p%d", o.Replica, o.Proc)
	}
	s = fmt.Sprintf("[%s %.3fs..%.3fs] %s %s", who, float64(o.Call)/1e9, float64(o.Return)/1e9, s, o.Outcome)
	if o.Err != "" {
		s += ": " + o.Err
	}
	return s
}

// classify tells what an error of Propose means for the operation.
func classify(err error) (outcome, string) {
	if err == nil {
		return ok, ""
	}
	var re *client.ReplyError
	if errors.As(err, &re) {
		// The state machine answered with an error: the command was
		// applied as a no-op (kv never does this).
		return failed, err.Error()
	}
	if status.Code(err) == codes.InvalidArgument {
		// Refused before anything was ordered, at every replica alike.
		return failed, err.Error()
	}
	// Timeouts, unavailable replicas, a result no longer known: the
	// command may have been applied, or may be later.
	return indeterminate, err.Error()
}

// recorder collects the history.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []op
	procs int
}

func newRecorder(start time.Time) *recorder { return &recorder{start: start} }

func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

// newProc returns a fresh porcupine client id.
func (r *recorder) newProc() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.procs++
	return r.procs - 1
}

func (r *recorder) add(o op) {
	r.mu.Lock()
	r.ops = append(r.ops, o)
	r.mu.Unlock()
}

func (r *recorder) history() []op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// counts returns the number of operations by outcome.
func counts(ops []op) (n [3]int) {
	for _, o := range ops {
		n[o.Outcome]++
	}
	return n
}

// kvInput and kvOutput are a porcupine operation's input and output.
type kvInput struct {
	Op *op
}

type kvOutput struct {
	Value   string
	Unknown bool // the outcome is unknown: any output is accepted
}

// kvModel is a register per key: its state is the key's value, "" when
// absent (kv reads an absent key as empty).
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, o := range history {
			k := o.Input.(kvInput).Op.Key
			byKey[k] = append(byKey[k], o)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, st, out := input.(kvInput).Op, state.(string), output.(kvOutput)
		switch in.Access {
		case client.Write:
			return true, in.Value
		case client.Delete:
			return true, ""
		}
		return out.Unknown || out.Value == st, st
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		h.Write([]byte(state.(string)))
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput).Op, output.(kvOutput)
		who := fmt.Sprintf("w%d", in.Worker)
		if in.Replica >= 0 {
			who = fmt.Sprintf("final read at r%d", in.Replica)
		}
		var s string
		switch in.Access {
		case client.Write:
			s = fmt.Sprintf("write(%s, %q)", in.Key, in.Value)
		case client.Delete:
			s = fmt.Sprintf("delete(%s)", in.Key)
		default:
			s = fmt.Sprintf("read(%s) -> %q", in.Key, out.Value)
		}
		if out.Unknown {
			s += " [indeterminate]"
		}
		return who + ": " + s
	},
	DescribeState: func(state any) string {
		if state.(string) == "" {
			return "(absent)"
		}
		return fmt.Sprintf("%q", state.(string))
	},
}

// porcupineHistory turns the recorded operations into porcupine's:
//
//   - ok operations with their times and replies;
//   - failed operations are left out (they did not take effect);
//   - an indeterminate write or delete may have taken effect at any time
//     after its call, even after the final reads: it returns at the end of
//     the history, with an unknown output;
//   - except an indeterminate write whose value no ok read returned: it is
//     left out. That is sound and complete: in any linearization that
//     includes it, the operations between it and the next write or delete
//     of its key are not reads (a read there would have returned its
//     value), so dropping it from the linearization leaves one of the rest;
//     and without it the history is the one where it never happened, which
//     is allowed. It keeps porcupine's search small;
//   - an indeterminate read is left out: it changes nothing, and its reply
//     is unknown, so it constrains nothing.
func porcupineHistory(ops []op) []porcupine.Operation {
	var end int64
	observed := map[string]bool{} // key + "\x00" + value read by an ok read
	for _, o := range ops {
		end = max(end, o.Return)
		if o.Outcome == ok && o.Access == client.Read {
			observed[o.Key+"\x00"+o.Output] = true
		}
	}
	end++
	var h []porcupine.Operation
	for i := range ops {
		o := &ops[i]
		switch {
		case o.Outcome == ok:
			h = append(h, porcupine.Operation{ClientId: o.Proc, Input: kvInput{o}, Call: o.Call,
				Output: kvOutput{Value: o.Output}, Return: o.Return})
		case o.Outcome == indeterminate && o.Access == client.Delete,
			o.Outcome == indeterminate && o.Access == client.Write && observed[o.Key+"\x00"+o.Value]:
			h = append(h, porcupine.Operation{ClientId: o.Proc, Input: kvInput{o}, Call: o.Call,
				Output: kvOutput{Unknown: true}, Return: end})
		}
	}
	return h
}

// linearizability is the verdict on a history.
type linearizability struct {
	Result  porcupine.CheckResult
	Ops     int // operations porcupine checked
	Elapsed time.Duration
	BadKeys []string // the keys whose histories are not linearizable
	Detail  string   // the first bad key's operations
}

func (l linearizability) String() string {
	s := fmt.Sprintf("%s (porcupine over %d ops in %v)", l.Result, l.Ops, l.Elapsed.Round(time.Millisecond))
	if l.Result == porcupine.Unknown {
		s += ": the checker timed out"
	}
	return s
}

// checkLinearizable checks the history with porcupine.
func checkLinearizable(ops []op, timeout time.Duration) linearizability {
	h := porcupineHistory(ops)
	begin := time.Now()
	res := porcupine.CheckOperationsTimeout(kvModel, h, timeout)
	l := linearizability{Result: res, Ops: len(h), Elapsed: time.Since(begin)}
	if res == porcupine.Illegal {
		l.BadKeys, l.Detail = badKeys(h, timeout)
	}
	return l
}

// maxVisualized bounds the operations drawn in the visualisation, which
// is meant for a browser.
const maxVisualized = 20000

// visualize writes porcupine's visualisation to path: of the keys in bad
// if any, else of the latest keys (in the order they were first used) up
// to maxVisualized operations.
func visualize(ops []op, bad []string, path string, timeout time.Duration) error {
	keep := map[string]bool{}
	for _, k := range bad {
		keep[k] = true
	}
	if len(bad) == 0 {
		perKey := map[string]int{}
		var order []string
		for _, o := range ops {
			if perKey[o.Key] == 0 {
				order = append(order, o.Key)
			}
			perKey[o.Key]++
		}
		total := 0
		for i := len(order) - 1; i >= 0 && total+perKey[order[i]] <= maxVisualized; i-- {
			keep[order[i]] = true
			total += perKey[order[i]]
		}
	}
	var sub []op
	for _, o := range ops {
		if keep[o.Key] {
			sub = append(sub, o)
		}
	}
	_, info := porcupine.CheckOperationsVerbose(kvModel, porcupineHistory(sub), timeout)
	return porcupine.VisualizePath(kvModel, info, path)
}

// badKeys returns the keys whose operations alone are not linearizable,
// and the first one's operations in call order.
func badKeys(h []porcupine.Operation, timeout time.Duration) ([]string, string) {
	var keys []string
	var detail strings.Builder
	for _, part := range kvModel.Partition(h) {
		if porcupine.CheckOperationsTimeout(kvModel, part, timeout) != porcupine.Illegal {
			continue
		}
		key := part[0].Input.(kvInput).Op.Key
		keys = append(keys, key)
		if len(keys) > 1 {
			continue
		}
		part = slices.Clone(part)
		slices.SortStableFunc(part, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		fmt.Fprintf(&detail, "key %q is not linearizable; its %d operations by call time (an indeterminate one stays open to the end):\n",
			key, len(part))
		for i, o := range part {
			if i == 400 {
				fmt.Fprintf(&detail, "  ... and %d more (see history.txt)\n", len(part)-i)
				break
			}
			fmt.Fprintf(&detail, "  %s\n", o.Input.(kvInput).Op)
		}
	}
	if len(keys) == 0 {
		return nil, "(no single key fails on its own)"
	}
	return keys, detail.String()
}

// lostWrites returns every acknowledged write or delete whose effect the
// final values do not show although no other write or delete of its key
// can be ordered after it and leave the final value: the mutation that
// must come last (the final value's) is missing. final maps each key to
// the value every replica read at the end. This follows from
// linearizability and the final reads; it is checked on its own because
// it is cheap and names the lost write.
func lostWrites(ops []op, final map[string]string) []string {
	effect := func(o op) string {
		if o.Access == client.Write {
			return o.Value
		}
		return ""
	}
	// latest[key][value]: the latest return of a write or delete of key
	// that leaves value (an indeterminate one may take effect any time).
	const forever = int64(1<<63 - 1)
	latest := map[string]map[string]int64{}
	for _, b := range ops {
		if b.Access == client.Read || b.Outcome == failed {
			continue
		}
		if latest[b.Key] == nil {
			latest[b.Key] = map[string]int64{}
		}
		ret := b.Return
		if b.Outcome == indeterminate {
			ret = forever
		}
		if v := effect(b); ret > latest[b.Key][v] {
			latest[b.Key][v] = ret
		}
	}
	var lost []string
	for _, a := range ops {
		fv, known := final[a.Key]
		if a.Outcome != ok || a.Access == client.Read || !known || effect(a) == fv {
			continue
		}
		// Another mutation leaving fv may be ordered after a unless it
		// returned before a began.
		if last, any := latest[a.Key][fv]; !any || last < a.Call {
			lost = append(lost, fmt.Sprintf("%s: acknowledged, but every replica ends with %s = %q, which no write or delete that may follow it leaves",
				a, a.Key, fv))
		}
	}
	return lost
}
