package replica

import (
	"fmt"
	"slices"
	"strings"
)

// ReplicaID is a replica's pid: 0..N-1, fixed by the cluster configuration.
type ReplicaID uint32

// InstanceID names one consensus instance. Replica is the instance's initial
// coordinator (initCoord(id) in the paper), which owns ballot 0; Slot counts
// from 1 within that replica's column, so the zero InstanceID names nothing.
type InstanceID struct {
	Replica ReplicaID
	Slot    uint64
}

// Less is the total order on instance ids, (replica, slot), that breaks ties
// inside a strongly connected component during execution.
func (a InstanceID) Less(b InstanceID) bool {
	if a.Replica != b.Replica {
		return a.Replica < b.Replica
	}
	return a.Slot < b.Slot
}

func (a InstanceID) String() string { return fmt.Sprintf("%d.%d", a.Replica, a.Slot) }

// Access says how a command touches its key.
type Access uint8

const (
	Read   Access = 1
	Write  Access = 2
	Delete Access = 3
)

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("access(%d)", uint8(a))
}

// Valid reports whether a is one of Read, Write, Delete.
func (a Access) Valid() bool { return a >= Read && a <= Delete }

// Command is one client command. (ClientID, Seq) identifies it so that a
// command retried through another replica is applied at most once.
type Command struct {
	ClientID uint64
	Seq      uint64
	Access   Access
	Key      string
	Value    []byte
}

// Interferes reports whether a and b must be executed in the same order on
// every replica: they share a key and at least one of them writes it (reads
// commute with reads), or they come from the same client session.
//
// The second rule is what keeps the replicated session table identical on
// every replica. A client sends request seq+1 only after seq has executed,
// but if the two touch different keys nothing else orders them, and a
// lagging replica could execute seq+1 first and then skip seq as stale while
// the others applied it. Making a session's commands interfere puts seq in
// the deps of seq+1 (it committed before seq+1 was proposed), so every
// replica executes them in order. ClientID 0 names no session.
func (c Command) Interferes(o Command) bool {
	if c.ClientID != 0 && c.ClientID == o.ClientID {
		return true
	}
	return c.Key == o.Key && (c.Access != Read || o.Access != Read)
}

// Payload is the value an instance decides: a batch of commands or a no-op.
// A nil *Payload is the paper's ⊥ (not known here).
type Payload struct {
	Nop      bool
	Commands []Command
}

// NopPayload is the value recovery decides for an instance it must abandon.
func NopPayload() *Payload { return &Payload{Nop: true} }

// Interferes reports whether two payloads have interfering commands (cmd ⋈ c).
// A no-op interferes with nothing.
func (p *Payload) Interferes(o *Payload) bool {
	if p == nil || o == nil || p.Nop || o.Nop {
		return false
	}
	for _, a := range p.Commands {
		for _, b := range o.Commands {
			if a.Interferes(b) {
				return true
			}
		}
	}
	return false
}

// Clone returns a deep copy of p (nil for ⊥) that shares no memory with it.
func (p *Payload) Clone() *Payload {
	if p == nil {
		return nil
	}
	q := &Payload{Nop: p.Nop}
	if p.Commands != nil {
		q.Commands = make([]Command, len(p.Commands))
		for i, c := range p.Commands {
			c.Value = slices.Clone(c.Value)
			q.Commands[i] = c
		}
	}
	return q
}

// Equal reports whether two payloads are the same value (both ⊥, or equal).
func (p *Payload) Equal(o *Payload) bool {
	if p == nil || o == nil {
		return p == o
	}
	if p.Nop != o.Nop || len(p.Commands) != len(o.Commands) {
		return false
	}
	for i := range p.Commands {
		a, b := p.Commands[i], o.Commands[i]
		if a.ClientID != b.ClientID || a.Seq != b.Seq || a.Access != b.Access ||
			a.Key != b.Key || string(a.Value) != string(b.Value) {
			return false
		}
	}
	return true
}

func (p *Payload) String() string {
	switch {
	case p == nil:
		return "⊥"
	case p.Nop:
		return "nop"
	}
	parts := make([]string, len(p.Commands))
	for i, c := range p.Commands {
		parts[i] = fmt.Sprintf("%s(%q)", c.Access, c.Key)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Phase is an instance's progress at one replica (epaxos-star.md §1).
type Phase uint8

const (
	Initial Phase = iota
	PreAccepted
	Accepted
	Committed
)

func (p Phase) String() string {
	switch p {
	case Initial:
		return "initial"
	case PreAccepted:
		return "preaccepted"
	case Accepted:
		return "accepted"
	case Committed:
		return "committed"
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// Ballot numbers a round of an instance. Ballot 0 belongs to the instance's
// initial coordinator; a ballot b > 0 belongs to replica b mod N.
type Ballot uint64
