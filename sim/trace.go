package sim

import (
	"fmt"
	"strings"

	"github.com/epaxosd/epaxosd/replica"
)

// The trace: a ring of the last traceTail events, formatted only when a run
// fails (formatting every event of every run would dominate the run time),
// or, with Options.Trace, every event as it happens. The fingerprint is a
// cheap running hash of every event, for the determinism test.

const traceTail = 60

type traceKind uint8

const (
	tkDeliver traceKind = iota
	tkDrop
	tkTick
	tkPropose
	tkCommit
	tkExec
	tkCrash
	tkRestart
	tkPartition
	tkPhase
	tkRequest
	tkResult
	tkTimeout
	tkGiveUp
)

type traceEntry struct {
	at     int64
	kind   traceKind
	node   int
	msg    replica.Message
	id     replica.InstanceID
	cmd    cmdKey
	held   int // tkPropose: commands waiting in the gate after it
	replay bool
	note   string
}

func (e traceEntry) String() string {
	t := fmt.Sprintf("t=%d.%d", e.at/TickUnits, e.at%TickUnits)
	switch e.kind {
	case tkDeliver:
		return fmt.Sprintf("%s deliver %s", t, fmtMsg(e.msg))
	case tkDrop:
		if e.note == "client reply lost" {
			return fmt.Sprintf("%s r%d: reply to %v lost", t, e.node, e.cmd)
		}
		return fmt.Sprintf("%s drop (%s) %s", t, e.note, fmtMsg(e.msg))
	case tkTick:
		return fmt.Sprintf("%s r%d tick", t, e.node)
	case tkPropose:
		return fmt.Sprintf("%s r%d enqueues %v (%d held)", t, e.node, e.cmd, e.held)
	case tkCommit:
		return fmt.Sprintf("%s r%d persists commit %s", t, e.node, e.note)
	case tkExec:
		if e.replay {
			return fmt.Sprintf("%s r%d replays %v", t, e.node, e.id)
		}
		return fmt.Sprintf("%s r%d executes %v", t, e.node, e.id)
	case tkCrash:
		return fmt.Sprintf("%s r%d CRASHES (%s)", t, e.node, e.note)
	case tkRestart:
		return fmt.Sprintf("%s r%d restarts from its disk", t, e.node)
	case tkPartition:
		return fmt.Sprintf("%s partition: %s", t, e.note)
	case tkPhase:
		return fmt.Sprintf("%s === %s ===", t, e.note)
	case tkRequest:
		return fmt.Sprintf("%s client -> r%d: %s", t, e.node, e.note)
	case tkResult:
		return fmt.Sprintf("%s client <- r%d: %s", t, e.node, e.note)
	case tkTimeout:
		if e.note != "" {
			return fmt.Sprintf("%s client %v at r%d: %s", t, e.cmd, e.node, e.note)
		}
		return fmt.Sprintf("%s client %v at r%d: timed out", t, e.cmd, e.node)
	case tkGiveUp:
		return fmt.Sprintf("%s client gives up on %s: outcome unknown", t, e.note)
	}
	return fmt.Sprintf("%s event %d", t, e.kind)
}

func fmtMsg(m replica.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d->%d %v b=%d", m.Type, m.From, m.To, m.Instance, m.Ballot)
	switch m.Type {
	case replica.MsgPreAccept, replica.MsgAccept, replica.MsgCommit, replica.MsgValidate:
		fmt.Fprintf(&b, " cmd=%v deps=%v", m.Command, clipDeps(m.Deps))
	case replica.MsgPreAcceptOK:
		fmt.Fprintf(&b, " deps=%v", clipDeps(m.Deps))
	case replica.MsgRecoverOK:
		fmt.Fprintf(&b, " abal=%d %v cmd=%v deps=%v initDeps=%v", m.Abal, m.Phase, m.Command, clipDeps(m.Deps), clipDeps(m.InitDeps))
	case replica.MsgValidateOK:
		fmt.Fprintf(&b, " I=%v", m.Invalidators)
	case replica.MsgWaiting:
		fmt.Fprintf(&b, " k=%d", m.Count)
	case replica.MsgFetch:
		fmt.Fprintf(&b, " ids=%v", clipDeps(m.Deps))
	}
	return b.String()
}

func clipDeps(d replica.Deps) string {
	if d.Len() > 8 {
		return fmt.Sprintf("%v...(%d)", replica.NewDepsWithHorizon(horizonOf(d), d.IDs()[:8]...), d.Len())
	}
	return d.String()
}

// horizonOf returns d's horizon as a slice.
func horizonOf(d replica.Deps) []uint64 {
	h := make([]uint64, d.HorizonColumns())
	for q := range h {
		h[q] = d.Horizon(replica.ReplicaID(q))
	}
	return h
}

// tracer keeps the ring and, when tracing, writes every event.
type tracer struct {
	ring [traceTail]traceEntry
	n    int
	out  func(string) // nil unless tracing every event
}

func (t *tracer) add(e traceEntry) {
	t.ring[t.n%traceTail] = e
	t.n++
	if t.out != nil {
		t.out(e.String())
	}
}

// tail formats the last events, oldest first.
func (t *tracer) tail() string {
	var b strings.Builder
	start := max(0, t.n-traceTail)
	for i := start; i < t.n; i++ {
		b.WriteString("    ")
		b.WriteString(t.ring[i%traceTail].String())
		b.WriteByte('\n')
	}
	return b.String()
}

// fingerprint is a running 64-bit hash of a run's events (FNV-1a style
// mixing of whole words).
type fingerprint struct{ h uint64 }

func newFingerprint() fingerprint { return fingerprint{h: 14695981039346656037} }

func (f *fingerprint) word(v uint64) {
	f.h ^= v
	f.h *= 1099511628211
	f.h ^= f.h >> 29
}

func (f *fingerprint) u64(tag, v uint64) {
	f.word(tag)
	f.word(v)
}

func (f *fingerprint) id(id replica.InstanceID) { f.word(uint64(id.Replica)<<48 ^ id.Slot) }

func (f *fingerprint) deps(d replica.Deps) {
	h := horizonOf(d)
	f.word(uint64(len(h)))
	for _, s := range h {
		f.word(s)
	}
	f.word(uint64(d.Len()))
	for _, id := range d.IDs() {
		f.id(id)
	}
}

func (f *fingerprint) payload(p *replica.Payload) {
	switch {
	case p == nil:
		f.word(1)
	case p.Nop:
		f.word(2)
	default:
		f.word(uint64(len(p.Commands)) << 8)
		for _, c := range p.Commands {
			f.word(c.ClientID<<32 ^ c.Seq)
		}
	}
}

func (f *fingerprint) msg(tag uint64, m replica.Message) {
	f.word(tag<<56 ^ uint64(m.Type)<<48 ^ uint64(m.From)<<40 ^ uint64(m.To)<<32)
	f.id(m.Instance)
	f.word(uint64(m.Ballot))
	f.payload(m.Command)
	f.deps(m.Deps)
}

func (f *fingerprint) record(node int, r replica.InstanceRecord) {
	f.word(9<<56 ^ uint64(node)<<48 ^ uint64(r.Phase)<<40)
	f.id(r.ID)
	f.word(uint64(r.Bal)<<32 ^ uint64(r.Abal))
	f.payload(r.Command)
	f.deps(r.Deps)
}
