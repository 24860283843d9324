package transport

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/replica"
)

// recordingPeer serves the Peer service and records each envelope it
// receives with the time it arrived.
type recordingPeer struct {
	epaxospb.UnimplementedPeerServer
	mu   sync.Mutex
	envs []recorded
}

type recorded struct {
	at    time.Time
	slots []uint64
}

func (r *recordingPeer) Stream(s epaxospb.Peer_StreamServer) error {
	if err := s.SendHeader(nil); err != nil {
		return err
	}
	for {
		env, err := s.Recv()
		if err != nil {
			return nil
		}
		rec := recorded{at: time.Now()}
		for _, m := range env.GetMessages() {
			rec.slots = append(rec.slots, m.GetInstance().GetSlot())
		}
		r.mu.Lock()
		r.envs = append(r.envs, rec)
		r.mu.Unlock()
	}
}

func (r *recordingPeer) received() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.envs...)
}

func TestDelayedPeerReceivesAfterDelayInOrder(t *testing.T) {
	const delay = 100 * time.Millisecond
	lis := listen(t)
	rec := &recordingPeer{}
	srv := grpc.NewServer(ServerOptions()...)
	epaxospb.RegisterPeerServer(srv, rec)
	go srv.Serve(lis)
	defer srv.Stop()

	tr := New(Config{Self: 0, Peers: map[replica.ReplicaID]string{1: lis.Addr().String()}, Cluster: testCluster,
		PeerDelay: map[replica.ReplicaID]time.Duration{1: delay}})
	tr.Start()
	defer tr.Close()
	waitFor(t, "connection", func() bool { return tr.Stats().Peers[1].Connected })
	if d := tr.Stats().Peers[1].Delay; d != delay {
		t.Fatalf("Stats().Peers[1].Delay = %v, want %v", d, delay)
	}

	// A burst of 50 messages in one Send, then 20 Sends of one message,
	// then another burst. sentAt[slot] is taken before the Send.
	sentAt := map[uint64]time.Time{}
	slot := uint64(0)
	send := func(n int) {
		var batch []replica.Message
		now := time.Now()
		for range n {
			slot++
			sentAt[slot] = now
			batch = append(batch, msg(0, 1, slot))
		}
		tr.Send(batch)
	}
	send(50)
	for range 20 {
		send(1)
		time.Sleep(time.Millisecond) // spreads the sends out; not synchronisation
	}
	send(30)
	total := slot

	waitFor(t, "all messages", func() bool {
		n := 0
		for _, e := range rec.received() {
			n += len(e.slots)
		}
		return uint64(n) == total
	})
	envs := rec.received()
	next := uint64(1)
	for i, e := range envs {
		for _, s := range e.slots {
			if s != next {
				t.Fatalf("envelope %d: slot %d arrived where %d was due: out of order", i, s, next)
			}
			next++
			if early := sentAt[s].Add(delay).Sub(e.at); early > 0 {
				t.Errorf("slot %d arrived %v after Send, %v earlier than the delay %v", s, e.at.Sub(sentAt[s]), early, delay)
			}
		}
	}
	// Messages due together share an envelope: neither burst is split
	// (messages that fell due meanwhile may join them).
	for _, burst := range [][2]uint64{{1, 50}, {71, 100}} {
		for _, e := range envs {
			if len(e.slots) > 0 && e.slots[0] <= burst[0] && burst[0] <= e.slots[len(e.slots)-1] {
				if e.slots[len(e.slots)-1] < burst[1] {
					t.Errorf("the burst of slots %d-%d was split: an envelope ends at %d", burst[0], burst[1], e.slots[len(e.slots)-1])
				}
				break
			}
		}
	}
	if st := tr.Stats(); st.Sent != total || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestUndelayedPeersAreNotDelayed(t *testing.T) {
	// A delay applies to its peer only, and a negative one is none.
	tr := New(Config{Self: 0, Peers: map[replica.ReplicaID]string{1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3"},
		Cluster: testCluster, PeerDelay: map[replica.ReplicaID]time.Duration{1: time.Hour, 3: -time.Second}})
	defer tr.Close()
	want := map[replica.ReplicaID]time.Duration{1: time.Hour, 2: 0, 3: 0}
	for id, d := range want {
		if got := tr.Stats().Peers[id].Delay; got != d {
			t.Errorf("peer %d: Delay = %v, want %v", id, got, d)
		}
	}
}

func TestDelayLineHoldsAcrossCalls(t *testing.T) {
	// The line releases messages in queue order once due; a head that is
	// not due is held, and next waits for it.
	q := make(chan queued, 4)
	line := &delayLine{queue: q}
	t0 := time.Now()
	q <- queued{m: msg(0, 1, 1)}                                     // no delay
	q <- queued{m: msg(0, 1, 2), due: t0.Add(30 * time.Millisecond)} // not due at t0
	q <- queued{m: msg(0, 1, 3), due: t0.Add(30 * time.Millisecond)}
	if m, ok := line.due(t0); !ok || m.m.Instance.Slot != 1 {
		t.Fatalf("due(t0) = %v, %v; want slot 1", m.m.Instance.Slot, ok)
	}
	if _, ok := line.due(t0); ok {
		t.Fatal("due(t0) released slot 2 before it was due")
	}
	if len(q) != 1 || !line.holding {
		t.Fatalf("queue holds %d, holding=%v; want slot 2 held and slot 3 queued", len(q), line.holding)
	}
	m, ok := line.next(make(chan struct{}))
	if !ok || m.m.Instance.Slot != 2 || time.Now().Before(m.due) {
		t.Fatalf("next() = slot %d, %v at %v; want slot 2 no earlier than its due time", m.m.Instance.Slot, ok, time.Since(t0))
	}
	if m, ok := line.due(time.Now()); !ok || m.m.Instance.Slot != 3 {
		t.Fatalf("due(now) = %v, %v; want slot 3", m.m.Instance.Slot, ok)
	}
	// A closed done ends the wait and keeps the held message.
	q <- queued{m: msg(0, 1, 4), due: time.Now().Add(time.Hour)}
	done := make(chan struct{})
	close(done)
	if _, ok := line.next(done); ok {
		t.Fatal("next returned a message due in an hour")
	}
	if m, ok := line.due(time.Now().Add(2 * time.Hour)); !ok || m.m.Instance.Slot != 4 {
		t.Fatalf("after an ended wait, due() = %v, %v; want slot 4, kept", m.m.Instance.Slot, ok)
	}
}
