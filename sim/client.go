package sim

import (
	"fmt"

	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/session"
)

// cmdKey identifies a client request: (client id, seq).
type cmdKey struct{ Client, Seq uint64 }

func (k cmdKey) String() string { return fmt.Sprintf("c%d#%d", k.Client, k.Seq) }

// client is one closed-loop client, as an application using the exactly-once
// client library: one client id, one request in flight at a time, seq
// increasing by one per request. A request goes to a random replica; if no
// answer comes within the attempt timeout (or the replica is down, or its
// connection resets), the same (client id, seq) is retried at another
// replica. During the fault phase a client gives up after maxAttempts
// attempts: the request's outcome is then unknown (it may or may not take
// effect, at any later time), and the client moves on to seq+1. After the
// heal it never gives up.
type client struct {
	index  int
	id     uint64
	seq    uint64
	cur    *op
	issued int
	done   bool // issues no more requests
}

// opStatus is how a client request ended.
type opStatus int

const (
	opPending opStatus = iota
	opOK               // the client got its result
	opUnknown          // the client gave up: it may or may not take effect
)

// op is one client request and its place in the history.
type op struct {
	client   *client
	cmd      replica.Command
	call     int64 // virtual time the client issued it
	ret      int64 // virtual time the client got the result (opOK)
	status   opStatus
	output   string // a read's result
	attempts int
}

func (o *op) key() cmdKey { return cmdKey{o.cmd.ClientID, o.cmd.Seq} }

func (o *op) String() string {
	c := o.cmd
	switch c.Access {
	case replica.Write:
		return fmt.Sprintf("%v write(%s,%q)", o.key(), c.Key, c.Value)
	case replica.Delete:
		return fmt.Sprintf("%v delete(%s)", o.key(), c.Key)
	}
	return fmt.Sprintf("%v read(%s)", o.key(), c.Key)
}

// attempt is one try of a request at one replica.
type attempt struct {
	op   *op
	node int
	dead bool // the client no longer waits for it

	// Set while the request waits at the replica (node.pending).
	ch     <-chan session.Result
	cancel func()
	inc    int // the replica's incarnation when the request arrived
}

// reply is what reaches a client for one attempt.
type reply struct {
	result  session.Result
	reset   bool // the replica crashed while the request waited there
	refused bool // the replica was down when the request arrived
}

const hotKey = "hot"

// wake lets an idle client issue its next request, if it has one left.
func (s *Sim) wake(c *client) {
	if c.cur != nil || c.done {
		return
	}
	if s.sched.now >= s.issueEnd || c.issued >= s.p.OpsPerClient {
		c.done = true
		return
	}
	c.seq++
	c.issued++
	cmd := replica.Command{ClientID: c.id, Seq: c.seq}
	if s.p.Sessions == SessionPerRequest {
		// A client id per request: client k's request j is c<k*1e6+j>#1.
		cmd = replica.Command{ClientID: c.id*1_000_000 + c.seq, Seq: 1}
	}
	if s.rng.Float64() < s.p.hotRate {
		cmd.Key = hotKey
	} else {
		cmd.Key = fmt.Sprintf("k%d", s.rng.IntN(s.p.Keys))
	}
	switch x := s.rng.IntN(20); {
	case x < 8:
		cmd.Access = replica.Read
	case x < 17:
		cmd.Access = replica.Write
		cmd.Value = []byte(fmt.Sprintf("c%d.%d", cmd.ClientID, cmd.Seq))
	default:
		cmd.Access = replica.Delete
	}
	o := &op{client: c, cmd: cmd, call: s.sched.now}
	c.cur = o
	s.ops = append(s.ops, o)
	s.issued[o.key()] = cmd
	s.sendAttempt(o, s.rng.IntN(s.p.N))
}

// sendAttempt sends o to replica i and arms the attempt's timeout.
func (s *Sim) sendAttempt(o *op, i int) {
	a := &attempt{op: o, node: i}
	o.attempts++
	s.fp.u64(7, o.key().Client<<32^o.key().Seq<<8^uint64(i))
	s.trace(traceEntry{kind: tkRequest, node: i, cmd: o.key(), note: o.String()})
	s.sched.after(s.clientDelay(), func() {
		if a.dead {
			return
		}
		n := s.nodes[i]
		if !n.up {
			s.reply(a, reply{refused: true})
			return
		}
		n.request(a)
	})
	s.sched.after(s.p.attemptTimeout, func() {
		if a.dead {
			return
		}
		a.dead = true
		s.nodes[i].abandon(a)
		s.trace(traceEntry{kind: tkTimeout, node: i, cmd: o.key()})
		s.retry(o, i)
	})
}

// reply sends r back to a's client over the client link, which may lose it
// during the fault phase (the client then times out). A reset or refusal is
// a local connection error and is not lost.
func (s *Sim) reply(a *attempt, r reply) {
	if s.faultsOn && !r.reset && !r.refused && s.rng.Float64() < s.p.clientLoss {
		s.trace(traceEntry{kind: tkDrop, node: a.node, cmd: a.op.key(), note: "client reply lost"})
		return
	}
	s.sched.after(s.clientDelay(), func() { s.receive(a, r) })
}

// receive is a reply reaching its client.
func (s *Sim) receive(a *attempt, r reply) {
	if a.dead {
		return
	}
	a.dead = true
	o := a.op
	if r.reset || r.refused {
		s.trace(traceEntry{kind: tkTimeout, node: a.node, cmd: o.key(), note: "connection refused or reset"})
		s.retry(o, a.node)
		return
	}
	res := r.result
	switch {
	case res.Stale:
		// Exactly-once: a client has one request in flight, so no newer
		// request of its own can have superseded the current one. A Stale
		// answer must never be taken for success; here it is a bug.
		s.fail("exactly-once", "client %d got a Stale result from replica %d for its current request %v", o.client.id, a.node, o)
		return
	case res.Err != "":
		s.fail("harness", "kv answered %v with an error: %s", o, res.Err)
		return
	}
	o.status = opOK
	o.ret = s.sched.now
	o.output = string(res.Value)
	s.fp.u64(8, o.key().Client<<32^o.key().Seq)
	s.trace(traceEntry{kind: tkResult, node: a.node, cmd: o.key(), note: fmt.Sprintf("%s -> %q", o, o.output)})
	s.finish(o)
}

// retry sends o again to another replica, or gives up on it during the
// fault phase once it has used its attempts.
func (s *Sim) retry(o *op, last int) {
	if s.faultsOn && o.attempts >= s.p.maxAttempts {
		o.status = opUnknown
		s.trace(traceEntry{kind: tkGiveUp, cmd: o.key(), note: o.String()})
		s.finish(o)
		return
	}
	next := s.rng.IntN(s.p.N - 1)
	if next >= last {
		next++
	}
	s.sched.after(1+s.rng.Int64N(TickUnits), func() { s.sendAttempt(o, next) })
}

// finish ends o's client's current request; the client thinks, then issues
// its next one.
func (s *Sim) finish(o *op) {
	c := o.client
	c.cur = nil
	s.sched.after(s.rng.Int64N(2*TickUnits), func() { s.wake(c) })
}

// clientDelay is the one-way delay of a client link.
func (s *Sim) clientDelay() int64 { return 1 + s.rng.Int64N(TickUnits/2) }
