package replica

import (
	"fmt"
	"slices"
)

// MessageType enumerates the EPaxos* messages (epaxos-star.md §1).
type MessageType uint8

const (
	MsgPreAccept MessageType = iota + 1
	MsgPreAcceptOK
	MsgAccept
	MsgAcceptOK
	MsgCommit
	MsgRecover
	MsgRecoverOK
	MsgValidate
	MsgValidateOK
	MsgWaiting
	MsgNack
	MsgFetch
)

var messageTypeNames = [...]string{
	MsgPreAccept: "PreAccept", MsgPreAcceptOK: "PreAcceptOK", MsgAccept: "Accept",
	MsgAcceptOK: "AcceptOK", MsgCommit: "Commit", MsgRecover: "Recover",
	MsgRecoverOK: "RecoverOK", MsgValidate: "Validate", MsgValidateOK: "ValidateOK",
	MsgWaiting: "Waiting", MsgNack: "Nack", MsgFetch: "Fetch",
}

func (t MessageType) String() string {
	if int(t) < len(messageTypeNames) && messageTypeNames[t] != "" {
		return messageTypeNames[t]
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Valid reports whether t is a known message type.
func (t MessageType) Valid() bool { return t >= MsgPreAccept && t <= MsgFetch }

// Invalidator is one pair (id', phase) of a ValidateOK's set I.
type Invalidator struct {
	Instance InstanceID
	Phase    Phase
}

// Message is one protocol message between replicas. Which fields are used
// depends on Type, following the paper's signatures:
//
//	PreAccept(id, c, D)        Instance, Command, Deps
//	PreAcceptOK(id, D_q)       Instance, Deps
//	Accept(b, id, c, D)        Ballot, Instance, Command, Deps
//	AcceptOK(b, id)            Ballot, Instance
//	Commit(b, id, c, D)        Ballot, Instance, Command (or CommandElided), Deps
//	Recover(b, id)             Ballot, Instance
//	RecoverOK(b, id, abal, cmd, dep, initCmd, initDep, phase)
//	                           Ballot, Instance, Abal, Command, Deps, InitCommand, InitDeps, Phase
//	Validate(b, id, c, D)      Ballot, Instance, Command, Deps
//	ValidateOK(b, id, I)       Ballot, Instance, Invalidators
//	Waiting(id, k)             Instance, Count
//	Nack(b, id)                Ballot (the sender's promise), Instance
//	Fetch(ids)                 Deps: instances the sender misses; the
//	                           receiver answers with a Commit for each it has
//	                           committed (catch-up; Instance is unused)
//
// Messages are values: the core never retains a slice or payload a caller
// may still modify, and callers must not modify what the core hands out.
type Message struct {
	Type         MessageType
	From, To     ReplicaID
	Instance     InstanceID
	Ballot       Ballot
	Command      *Payload
	Deps         Deps
	Abal         Ballot
	Phase        Phase
	InitCommand  *Payload
	InitDeps     Deps
	Invalidators []Invalidator
	Count        uint32
	// CommandElided, on a Commit from the instance's coordinator only,
	// says that Command is left out: the receiver holds the decided
	// command already, having answered the coordinator's PreAccept or
	// Accept of it (a command never changes once a replica has accepted
	// it for the decision; see commitAsLeader). It halves the bytes a
	// command costs on the network.
	CommandElided bool
}

// Clone returns a deep copy of m, as a real network delivers it: the
// receiver shares no memory with the sender.
func (m Message) Clone() Message {
	m.Command = m.Command.Clone()
	m.InitCommand = m.InitCommand.Clone()
	m.Deps = m.Deps.Clone()
	m.InitDeps = m.InitDeps.Clone()
	m.Invalidators = slices.Clone(m.Invalidators)
	return m
}

func (m Message) String() string {
	return fmt.Sprintf("%s %d->%d %s b=%d cmd=%s deps=%v", m.Type, m.From, m.To, m.Instance, m.Ballot, m.Command, m.Deps)
}
