package daemon

import (
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/storage"
)

// Storage keeps a replica's durable state: instance records, the slot
// reservation and the log of executed instances. Write must not return
// before the update is on stable storage: the persister sends the messages
// that promise the records, and applies the executions, as soon as it
// returns.
type Storage interface {
	Load() (replica.HardState, error)
	Write(storage.Update) error
	Close() error
}

// openStorage opens the durable store in cfg.DataDir, or a memory store
// when DataDir is empty (epaxosd dev).
func openStorage(cfg Config, log hclog.Logger) (Storage, error) {
	if cfg.DataDir == "" {
		return &memoryStorage{records: make(map[replica.InstanceID]int)}, nil
	}
	return storage.Open(cfg.DataDir, storage.Identity{
		Cluster: cfg.Cluster, Replica: uint32(cfg.ID), Replicas: cfg.N,
	}, storage.Options{Logger: log.Named("storage")})
}

// memoryStorage keeps the state in memory only: it survives a restart of
// the plugin (which is rebuilt from it) but not of the replica, which must
// then never rejoin its cluster with the same identity. Only `epaxosd dev`,
// whose whole cluster stops together, uses it.
type memoryStorage struct {
	mu       sync.Mutex
	records  map[replica.InstanceID]int // index into list
	list     []replica.InstanceRecord
	executed []replica.InstanceID
	reserved uint64
}

func (m *memoryStorage) Load() (replica.HardState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return replica.HardState{
		Instances: append([]replica.InstanceRecord(nil), m.list...),
		Executed:  append([]replica.InstanceID(nil), m.executed...),

		ReservedSlots: m.reserved,
	}, nil
}

func (m *memoryStorage) Write(u storage.Update) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reserved = max(m.reserved, u.ReservedSlots)
	records, executed := u.Records, u.Executed
	for _, r := range records {
		if i, ok := m.records[r.ID]; ok {
			m.list[i] = r
		} else {
			m.records[r.ID] = len(m.list)
			m.list = append(m.list, r)
		}
	}
	m.executed = append(m.executed, executed...)
	return nil
}

func (m *memoryStorage) Close() error { return nil }
