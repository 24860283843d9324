package raftkv

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// Result is what the FSM answers for one log entry.
type Result struct {
	Value []byte
	Err   string // the state machine's error reply
	Stale bool   // a newer request of the same client was applied: nothing applied
}

// session is the last request applied for one client id.
type session struct {
	Seq    uint64
	Result Result
}

// FSM is the replicated key-value store with the same semantics as
// plugins/kv (read returns the value, empty if absent; write stores; delete
// removes), and the same exactly-once session table as epaxosd's
// session.Table: per client id it remembers the last sequence number applied
// and its result, answers a retry of that request with the remembered
// result without applying it again, and applies nothing for an older
// sequence number (Stale). Requests with client id 0 bypass the table.
//
// Each log entry is one marshalled epaxospb.ProposeRequest.
type FSM struct {
	mu       sync.Mutex
	data     map[string][]byte
	sessions map[uint64]session
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// NewFSM returns an empty store.
func NewFSM() *FSM {
	return &FSM{data: make(map[string][]byte), sessions: make(map[uint64]session)}
}

// Apply applies one committed log entry and returns its Result.
func (f *FSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.apply(l)
}

// ApplyBatch applies committed log entries in order, one Result each.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.apply(l)
	}
	return out
}

func (f *FSM) apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var req epaxospb.ProposeRequest
	if err := proto.Unmarshal(l.Data, &req); err != nil {
		return Result{Err: fmt.Sprintf("raftkv: undecodable log entry %d: %v", l.Index, err)}
	}
	return applyRequest(f.data, f.sessions, &req)
}

// applyRequest applies req to a kv store and its session table, with the
// kv plugin's semantics, and returns its Result: the FSM's and the echo
// server's one store logic.
func applyRequest(data map[string][]byte, sessions map[uint64]session, req *epaxospb.ProposeRequest) Result {
	id, seq := req.GetClientId(), req.GetSeq()
	if id != 0 {
		if last, ok := sessions[id]; ok {
			if seq == last.Seq {
				return last.Result // a retry of the applied request: same answer
			}
			if seq < last.Seq {
				return Result{Stale: true}
			}
		}
	}
	var r Result
	key := string(req.GetKey())
	switch req.GetAccess() {
	case epaxospb.Access_READ:
		r.Value = data[key] // stored slices are never modified, only replaced
	case epaxospb.Access_WRITE:
		data[key] = bytes.Clone(req.GetValue())
	case epaxospb.Access_DELETE:
		delete(data, key)
	default:
		r.Err = fmt.Sprintf("kv: unsupported access %v", req.GetAccess())
	}
	if id != 0 {
		sessions[id] = session{Seq: seq, Result: r}
	}
	return r
}

// staleError is the answer to a request a newer one of its client
// superseded before it was applied.
func staleError(req *epaxospb.ProposeRequest) error {
	return status.Errorf(codes.FailedPrecondition,
		"request %d of client %x was superseded by a newer request of that client; its result is no longer known", req.GetSeq(), req.GetClientId())
}

// Get returns the value of key in this node's copy of the store, which may
// lag the leader's: for tests and debugging, not for clients.
func (f *FSM) Get(key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[key]
	return v, ok
}

// snapshotState is what a snapshot holds.
type snapshotState struct {
	Data     map[string][]byte
	Sessions map[uint64]session
}

// Snapshot captures the store. Values are never modified in place, so
// copying the maps is enough.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := snapshotState{Data: make(map[string][]byte, len(f.data)), Sessions: make(map[uint64]session, len(f.sessions))}
	for k, v := range f.data {
		st.Data[k] = v
	}
	for k, v := range f.sessions {
		st.Sessions[k] = v
	}
	return &fsmSnapshot{st: st}, nil
}

// Restore replaces the store with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var st snapshotState
	if err := gob.NewDecoder(rc).Decode(&st); err != nil {
		return fmt.Errorf("raftkv: decode snapshot: %w", err)
	}
	if st.Data == nil {
		st.Data = make(map[string][]byte)
	}
	if st.Sessions == nil {
		st.Sessions = make(map[uint64]session)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data, f.sessions = st.Data, st.Sessions
	return nil
}

type fsmSnapshot struct{ st snapshotState }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := gob.NewEncoder(sink).Encode(&s.st); err != nil {
		sink.Cancel()
		return fmt.Errorf("raftkv: encode snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
