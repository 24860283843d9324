package daemon

import (
	"github.com/hashicorp/go-hclog"

	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/storage"
)

// Storage keeps a replica's durable state: instance records and the log of
// executed instances. Save must not return before both are on stable
// storage: the core loop sends the messages that promise the records, and
// applies the executions, as soon as it returns.
type Storage interface {
	Load() (replica.HardState, error)
	Save(records []replica.InstanceRecord, executed []replica.InstanceID) error
	Close() error
}

// openStorage opens the durable store in cfg.DataDir, or a volatile one
// when DataDir is empty (epaxosd dev).
func openStorage(cfg Config, log hclog.Logger) (Storage, error) {
	if cfg.DataDir == "" {
		return volatileStorage{}, nil
	}
	return storage.Open(cfg.DataDir, storage.Identity{
		Cluster: cfg.Cluster, Replica: uint32(cfg.ID), Replicas: cfg.N,
	}, storage.Options{Logger: log.Named("storage")})
}

// volatileStorage keeps nothing: a replica that stops loses its state, so
// it must never rejoin its cluster with the same identity. Only `epaxosd
// dev`, whose whole cluster stops together, uses it.
type volatileStorage struct{}

func (volatileStorage) Load() (replica.HardState, error)                          { return replica.HardState{}, nil }
func (volatileStorage) Save([]replica.InstanceRecord, []replica.InstanceID) error { return nil }
func (volatileStorage) Close() error                                              { return nil }
