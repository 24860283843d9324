package replica

import "testing"

// newReplicas returns n replicas of one cluster.
func newReplicas(t testing.TB, n int, thrifty bool) []*Replica {
	t.Helper()
	rs := make([]*Replica, n)
	for i := range rs {
		r, err := New(Config{ID: ReplicaID(i), N: n, Thrifty: thrifty, TimeoutTicks: 5})
		if err != nil {
			t.Fatal(err)
		}
		rs[i] = r
	}
	return rs
}

func write(key string) Command { return Command{Access: Write, Key: key, Value: []byte("v")} }
func read(key string) Command  { return Command{Access: Read, Key: key} }

func mustPropose(t testing.TB, r *Replica, cmds ...Command) InstanceID {
	t.Helper()
	id, err := r.Propose(cmds)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustStep(t testing.TB, r *Replica, m Message) {
	t.Helper()
	if err := r.Step(m); err != nil {
		t.Fatal(err)
	}
}

// take returns r's pending messages of type typ addressed to `to` (any
// recipient when to < 0), discarding the rest of the Ready.
func take(r *Replica, typ MessageType, to int) []Message {
	var out []Message
	for _, m := range r.Ready().Messages {
		if m.Type == typ && (to < 0 || m.To == ReplicaID(to)) {
			out = append(out, m)
		}
	}
	return out
}

// one asserts that exactly one message matched.
func one(t testing.TB, ms []Message) Message {
	t.Helper()
	if len(ms) != 1 {
		t.Fatalf("want exactly one message, got %v", ms)
	}
	return ms[0]
}

func state(r *Replica, id InstanceID) *instance { return r.instances[id] }
