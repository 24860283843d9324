package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/session"
	"github.com/epaxosd/epaxosd/transport"
)

// Queue bounds. Every queue between goroutines is bounded so that a slow
// stage pushes back on the one before it instead of growing memory.
const (
	proposalQueue = 4096 // client commands waiting for the core loop
	maxProposal   = 1024 // commands per instance when aggregating
	maxStepDrain  = 1024 // peer messages stepped per Ready
)

// Daemon is one running replica.
type Daemon struct {
	cfg       Config
	log       hclog.Logger
	core      *replica.Replica
	transport *transport.Transport
	storage   Storage
	sessions  *session.Table
	admission *admission
	persister *persister
	reserved  *reservation   // durable slot reservations for the core loop
	metrics   *metrics       // nil without Config.MetricsFile
	status    statusReporter // only the core loop uses it
	applier   *applier
	server    *grpc.Server
	listener  net.Listener

	executed uint64 // executed-log position of the last execution handed to the applier

	proposals chan replica.Command
	stopping  chan struct{} // closed when Stop begins
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	errc      chan error
	stopOnce  sync.Once
}

// New starts the state-machine plugin, builds the replica and binds its
// address; nothing is served until Start.
func New(cfg Config) (*Daemon, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("replica %s: %w", cfg.Name, err)
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	core, err := replica.New(replica.Config{
		ID: cfg.ID, N: cfg.N, Thrifty: cfg.Thrifty, TimeoutTicks: cfg.timeoutTicks(), Seed: cfg.Seed,
		MaxBatch: cfg.maxBatch(),
	})
	if err != nil {
		return nil, err
	}
	store, err := openStorage(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("replica %s: %w", cfg.Name, err)
	}
	hard, err := store.Load()
	if err == nil {
		err = core.Restore(hard)
	}
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("replica %s: %w", cfg.Name, err)
	}
	lis := cfg.Listener
	if lis == nil {
		if lis, err = net.Listen("tcp", cfg.Address); err != nil {
			store.Close()
			return nil, fmt.Errorf("replica %s: listen: %w", cfg.Name, err)
		}
	}
	hc := cfg.Plugin
	if hc.Logger == nil {
		hc.Logger = log
	}
	d := &Daemon{
		cfg:       cfg,
		log:       log,
		core:      core,
		storage:   store,
		executed:  uint64(len(hard.Executed)),
		sessions:  session.New(),
		listener:  lis,
		proposals: make(chan replica.Command, proposalQueue),
		stopping:  make(chan struct{}),
		errc:      make(chan error, 1),
	}
	d.persister = newPersister(d)
	d.reserved = newReservation()
	if cfg.MetricsFile != "" {
		d.metrics = newMetrics()
	}
	d.transport = transport.New(transport.Config{
		Self: cfg.ID, Peers: cfg.Peers, Cluster: cfg.Cluster, Logger: log, TLS: cfg.peerTLS(),
		PeerDelay: cfg.PeerDelay,
	})
	d.applier = newApplier(func() (*plugin.Host, error) { return plugin.Launch(hc) },
		store.Load, d.sessions, log.Named("apply"), d.executed)
	opts := append(transport.ServerOptions(), cfg.serverCredentials()...)
	d.admission = newAdmission(cfg.ClientRateLimit, MaxInFlightRequestBytes)
	opts = append(opts, d.admission.serverOptions()...)
	d.server = grpc.NewServer(opts...)
	d.transport.Register(d.server)
	epaxospb.RegisterClientServer(d.server, &clientService{d: d})
	if err := d.applier.start(context.Background()); err != nil {
		d.closeResources()
		return nil, fmt.Errorf("replica %s: %w", cfg.Name, err)
	}
	return d, nil
}

// closeResources releases what New acquired.
func (d *Daemon) closeResources() {
	d.listener.Close()
	d.applier.drop()
	if err := d.storage.Close(); err != nil {
		d.log.Error("closing storage", "error", err)
	}
}

// Addr is the address the replica serves peers and clients on.
func (d *Daemon) Addr() string { return d.listener.Addr().String() }

// Start serves peers and clients and starts the core loop.
func (d *Daemon) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.transport.Start()
	d.run(func() error {
		if err := d.server.Serve(d.listener); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	})
	d.run(func() error { return d.coreLoop(ctx) })
	d.run(func() error { return d.persister.run(ctx) })
	d.run(func() error { return d.applier.run(ctx) })
	if d.metrics != nil {
		d.run(func() error { return d.writeMetrics(ctx, d.cfg.MetricsFile) })
	}
	d.log.Info("replica started", "pid", d.cfg.ID, "address", d.Addr(), "replicas", d.cfg.N,
		"thrifty", d.cfg.Thrifty, "aggregate", d.cfg.Aggregate)
}

// run starts f on its own goroutine; an error from f is fatal.
func (d *Daemon) run(f func() error) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := f(); err != nil {
			select {
			case d.errc <- err:
			default:
			}
		}
	}()
}

// Err delivers the first fatal error (the state machine failed, storage
// failed, the listener broke). The daemon must then be stopped.
func (d *Daemon) Err() <-chan error { return d.errc }

// Stop stops serving, stops the loops and the plugin. It is idempotent.
func (d *Daemon) Stop() {
	d.stopOnce.Do(func() {
		close(d.stopping) // in-flight client calls answer Unavailable
		d.transport.Close()
		stopped := make(chan struct{})
		go func() { d.server.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(500 * time.Millisecond):
			d.server.Stop() // peers' streams to us never end on their own
		}
		if d.cancel != nil {
			d.cancel()
		}
		d.wg.Wait()
		d.closeResources()
		d.log.Info("replica stopped")
	})
}
