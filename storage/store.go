package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/proto/storagepb"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/wire"
)

// FormatVersion is the on-disk format this package writes (doc.go,
// "On-disk format"). It also reads versions 1 (records always stored the
// initial command in full) and 2 (records held their command), and marks
// such a directory version 3 on open, before writing anything, so that an
// older binary refuses it.
const FormatVersion = 3

var (
	// ErrCorrupt is wrapped by every error that reports data failing its
	// checksum, its decoding or pebble's own integrity checks.
	ErrCorrupt = errors.New("storage: data is corrupt")
	// ErrIdentityMismatch is wrapped by Open's error for a data directory
	// that belongs to another cluster, replica or cluster size.
	ErrIdentityMismatch = errors.New("storage: data directory belongs to another replica")
	// ErrUnknownFormat is wrapped by Open's error for a data directory
	// written in an on-disk format this version does not know.
	ErrUnknownFormat = errors.New("storage: unknown on-disk format")
	// ErrFailed is wrapped by the error of the Save (or Load) during which
	// pebble hit a fatal error, and of every call after it.
	ErrFailed = errors.New("storage: store failed")
	// ErrClosed is returned by calls on a closed Store.
	ErrClosed = errors.New("storage: store closed")
)

// Identity names the cluster and replica a data directory belongs to.
type Identity struct {
	// Cluster is the cluster id.
	Cluster string
	// Replica is the replica's pid, 0..Replicas-1.
	Replica uint32
	// Replicas is the cluster size N.
	Replicas int
}

func (id Identity) String() string {
	return fmt.Sprintf("replica %d of cluster %s (%d replicas)", id.Replica, id.Cluster, id.Replicas)
}

func (id Identity) validate() error {
	switch {
	case id.Cluster == "":
		return errors.New("empty cluster id")
	case id.Replicas < 1 || id.Replicas > math.MaxUint32:
		return fmt.Errorf("cluster size %d out of range", id.Replicas)
	case int64(id.Replica) >= int64(id.Replicas):
		return fmt.Errorf("replica %d out of range for %d replicas", id.Replica, id.Replicas)
	}
	return nil
}

// Options configures a Store.
type Options struct {
	// FS is the file system to use; nil is the real disk. Tests and the
	// simulator pass a memory FS (vfs.NewMem, vfs.NewCrashableMem).
	FS vfs.FS
	// Logger receives pebble's log (its chatter at debug) and events; nil
	// discards them.
	Logger hclog.Logger
}

// Pebble settings. A replica's working set is its unexecuted and recent
// instances, and its writes are small records, so modest sizes suffice.
const (
	cacheSize    = 16 << 20
	memTableSize = 16 << 20
	// formatMajorVersion is pinned so a pebble upgrade does not change the
	// files under a replica by itself. It includes WAL sync chunks, which let
	// WAL replay tell a torn tail (tolerated) from corruption before the last
	// sync (reported), and checksummed sstable footers.
	formatMajorVersion = pebble.FormatTableFormatV6

	// maxPooledBuf bounds the encoding buffer kept between Saves.
	maxPooledBuf = 1 << 20
)

// Store is the durable store of one replica, kept in one data directory.
// Save, Load and Close may be called from any goroutine; Save and Load may
// run concurrently, Close must not run concurrently with either.
type Store struct {
	dir string
	db  *pebble.DB
	log hclog.Logger

	// execMu serializes Saves that append to the executed log, so positions
	// are committed, and therefore made durable, in order.
	execMu  sync.Mutex
	nextPos uint64 // next executed-log position; guarded by execMu

	failed atomic.Pointer[failedError]
	closed atomic.Bool

	reserved atomic.Uint64 // the durable slot reservation (Update.ReservedSlots)
}

// Open opens the store in dir, creating dir and the store if needed. The
// first open records id in the directory; a later open with another
// identity fails with ErrIdentityMismatch and leaves the stored data as it
// was. pebble's lock keeps a second Store, in this process or another, off
// a directory in use.
func Open(dir string, id Identity, opts Options) (s *Store, err error) {
	if err := id.validate(); err != nil {
		return nil, fmt.Errorf("storage: open %s: identity: %w", dir, err)
	}
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if err := mkdirAllSynced(fs, dir); err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	s = &Store{dir: dir, log: log}
	defer func() {
		if err != nil {
			s = nil
		}
	}()
	defer s.recoverFatal(&err, "open")

	plog := log.Named("pebble")
	db, err := pebble.Open(dir, &pebble.Options{
		FS:                 fs,
		CacheSize:          cacheSize,
		MemTableSize:       memTableSize,
		FormatMajorVersion: formatMajorVersion,
		Logger:             pebbleLogger{log: plog},
		EventListener:      eventListener(plog),
	})
	if err != nil {
		return nil, s.pebbleError("open", err)
	}
	s.db = db
	if err := s.checkIdentity(id); err != nil {
		_ = db.Close()
		return nil, err
	}
	if s.nextPos, err = s.lastPosition(); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.nextPos++
	reserved, err := s.loadReserved(s.db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.reserved.Store(reserved)
	log.Debug("store opened", "dir", dir, "identity", id.String(), "executed", s.nextPos-1)
	return s, nil
}

// mkdirAllSynced creates dir and its missing parents and syncs the parent
// of each directory it created: pebble syncs the entries it makes inside
// dir, but without this a crash could take dir itself, and all of it, away.
func mkdirAllSynced(fs vfs.FS, dir string) error {
	var created []string
	for d := dir; ; d = fs.PathDir(d) {
		if _, err := fs.Stat(d); err == nil {
			break
		}
		created = append(created, d)
		if fs.PathDir(d) == d {
			break
		}
	}
	if len(created) == 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range created {
		parent := fs.PathDir(d)
		f, err := fs.OpenDir(parent)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sync directory %s: %w", parent, err)
		}
	}
	return nil
}

// checkIdentity compares the directory's meta with id, writing it (synced)
// into a new store.
func (s *Store) checkIdentity(id Identity) error {
	val, closer, err := s.db.Get(metaKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return s.initMeta(id)
	}
	if err != nil {
		return s.pebbleError("read meta", err)
	}
	defer closer.Close()
	body, err := openValue(metaKey, val)
	if err != nil {
		return s.corrupt("meta", err)
	}
	var m storagepb.Meta
	if err := proto.Unmarshal(body, &m); err != nil {
		return s.corrupt("meta", err)
	}
	v := m.GetFormatVersion()
	if v < 1 || v > FormatVersion {
		return fmt.Errorf("storage: data dir %s has on-disk format version %d; this epaxosd reads versions 1 to %d: %w",
			s.dir, v, FormatVersion, ErrUnknownFormat)
	}
	if found := identityFromProto(&m); found != id {
		return &mismatchError{dir: s.dir, found: found, want: id}
	}
	if v < FormatVersion {
		return s.writeMeta(id, fmt.Sprintf("upgrade meta to format version %d", FormatVersion))
	}
	return nil
}

// writeMeta writes the meta of id at FormatVersion, synced.
func (s *Store) writeMeta(id Identity, what string) error {
	body, err := proto.Marshal(metaToProto(id))
	if err != nil {
		return fmt.Errorf("storage: %s: encode meta: %w", s.dir, err)
	}
	val := append(beginValue(nil), body...)
	sealValue(metaKey, val)
	if err := s.db.Set(metaKey, val, pebble.Sync); err != nil {
		return s.pebbleError(what, err)
	}
	return nil
}

// initMeta writes id into a store that has no meta yet. A store with data
// but no meta is refused: the meta is the first thing ever written.
func (s *Store) initMeta(id Identity) error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return s.pebbleError("read", err)
	}
	var key []byte
	if it.First() {
		key = append(key, it.Key()...)
	}
	if err := it.Close(); err != nil {
		return s.pebbleError("read", err)
	}
	if key != nil {
		return s.corrupt("meta", fmt.Errorf("missing, but the store holds data (%s)", describeKey(key)))
	}
	if err := s.writeMeta(id, "write meta"); err != nil {
		return err
	}
	// pebble creates a new store's first WAL before it raises the store to
	// formatMajorVersion, so that WAL lacks sync offsets and damage in it
	// would replay as a torn tail, silently dropping synced records. A flush
	// moves the meta into a table and every Save into a WAL that has them.
	if err := s.db.Flush(); err != nil {
		return s.pebbleError("flush meta", err)
	}
	return nil
}

// lastPosition returns the last executed-log position, 0 if the log is empty.
func (s *Store) lastPosition() (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: executedLower, UpperBound: executedUpper})
	if err != nil {
		return 0, s.pebbleError("read executed log", err)
	}
	var pos uint64
	var bad []byte
	if it.Last() {
		var ok bool
		if pos, ok = parseExecutedKey(it.Key()); !ok {
			bad = append(bad, it.Key()...)
		}
	}
	if err := it.Close(); err != nil {
		return 0, s.pebbleError("read executed log", err)
	}
	if bad != nil {
		return 0, s.corrupt(describeKey(bad), errors.New("malformed executed-log key"))
	}
	return pos, nil
}

// encoder holds Save's reusable buffers.
type encoder struct{ key, val []byte }

var encoders = sync.Pool{New: func() any { return new(encoder) }}

// Save makes records and executed durable: Write with no reservation.
func (s *Store) Save(records []replica.InstanceRecord, executed []replica.InstanceID) error {
	return s.Write(Update{Records: records, Executed: executed})
}

// Update is one durable write: what a batch of Readies asks to persist.
type Update struct {
	Records  []replica.InstanceRecord
	Executed []replica.InstanceID
	// ReservedSlots, if not zero, replaces the stored reservation
	// (replica.Ready.ReserveSlots); a smaller value than the stored one is
	// ignored, so the reservation never goes down.
	ReservedSlots uint64
	// NoSync writes the update without waiting for stable storage
	// (replica.Ready.NeedsSync is false for all it holds): a crash may lose
	// it, but only together with every later update, since the next
	// synced Write makes it durable first (pebble's WAL is sequential).
	NoSync bool
}

// Write makes u durable: it writes every record (replacing any earlier
// record of the same instance; a record's command only when it is not
// CommandUnchanged, which the store relies on: the command of the
// instance's previous record, written earlier by this store, is the
// record's), the reservation, and appends the executed
// ids to the executed log, in one pebble batch committed with pebble.Sync,
// and returns only once that batch is synced. On error nothing may be
// assumed about the batch; after an ErrFailed error the store is unusable.
func (s *Store) Write(u Update) (err error) {
	records, executed := u.Records, u.Executed
	if len(records) == 0 && len(executed) == 0 && u.ReservedSlots <= s.reserved.Load() {
		return nil
	}
	if err := s.usable(); err != nil {
		return err
	}
	defer s.recoverFatal(&err, "save")

	e := encoders.Get().(*encoder)
	defer func() {
		if cap(e.val) <= maxPooledBuf {
			encoders.Put(e)
		}
	}()
	b := s.db.NewBatch()
	defer b.Close()

	for i := range records {
		rec := &records[i]
		if rec.ID.Slot == 0 {
			return fmt.Errorf("storage: %s: save: record %v: slot 0 names no instance", s.dir, rec.ID)
		}
		// The command is written when it is new to this instance's
		// records; the record refers to it (command_stored_apart).
		if rec.Command != nil && !rec.CommandUnchanged {
			e.key = appendCommandKey(e.key[:0], rec.ID)
			e.val = appendCommandValue(beginValue(e.val[:0]), rec.Command)
			sealValue(e.key, e.val)
			if err := b.Set(e.key, e.val, nil); err != nil {
				return fmt.Errorf("storage: %s: save: %w", s.dir, err)
			}
		}
		e.key = appendRecordKey(e.key[:0], rec.ID)
		e.val = appendRecord(beginValue(e.val[:0]), rec)
		sealValue(e.key, e.val)
		if err := b.Set(e.key, e.val, nil); err != nil {
			return fmt.Errorf("storage: %s: save: %w", s.dir, err)
		}
	}
	if u.ReservedSlots > s.reserved.Load() {
		e.val = binary.BigEndian.AppendUint64(beginValue(e.val[:0]), u.ReservedSlots)
		sealValue(reservedKey, e.val)
		if err := b.Set(reservedKey, e.val, nil); err != nil {
			return fmt.Errorf("storage: %s: save: %w", s.dir, err)
		}
		defer func() {
			if err == nil {
				s.reserved.Store(u.ReservedSlots)
			}
		}()
	}
	if len(executed) == 0 {
		return s.commit(b, u.NoSync)
	}

	s.execMu.Lock()
	defer s.execMu.Unlock()
	pos := s.nextPos
	for _, id := range executed {
		if id.Slot == 0 {
			return fmt.Errorf("storage: %s: save: executed %v: slot 0 names no instance", s.dir, id)
		}
		e.key = appendExecutedKey(e.key[:0], pos)
		e.val = appendExecuted(beginValue(e.val[:0]), id)
		sealValue(e.key, e.val)
		if err := b.Set(e.key, e.val, nil); err != nil {
			return fmt.Errorf("storage: %s: save: %w", s.dir, err)
		}
		pos++
	}
	if err := s.commit(b, u.NoSync); err != nil {
		return err
	}
	s.nextPos = pos
	return nil
}

func (s *Store) commit(b *pebble.Batch, noSync bool) error {
	opts := pebble.Sync
	if noSync {
		opts = pebble.NoSync
	}
	if err := b.Commit(opts); err != nil {
		return s.pebbleError("save", err)
	}
	return nil
}

// Load returns everything the store holds: the latest record of every
// instance, in instance id order, and the executed log in order. It verifies
// every value; any failure wraps ErrCorrupt and nothing is returned.
func (s *Store) Load() (st replica.HardState, err error) {
	if err := s.usable(); err != nil {
		return st, err
	}
	defer s.recoverFatal(&err, "load")
	// One snapshot for both reads: Load runs while Save goes on (the
	// applier rebuilds or catches up a plugin on a live replica), and an
	// executed id read without its committed record would look like a
	// corrupt log.
	snap := s.db.NewSnapshot()
	defer snap.Close()
	commands, err := s.loadCommands(snap)
	if err != nil {
		return replica.HardState{}, err
	}
	if st.Instances, err = s.loadRecords(snap, commands); err != nil {
		return replica.HardState{}, err
	}
	if st.Executed, err = s.loadExecuted(snap); err != nil {
		return replica.HardState{}, err
	}
	if st.ReservedSlots, err = s.loadReserved(snap); err != nil {
		return replica.HardState{}, err
	}
	s.reserved.Store(max(s.reserved.Load(), st.ReservedSlots))
	return st, nil
}

// loadReserved reads the slot reservation (0 when none was ever written).
func (s *Store) loadReserved(r pebble.Reader) (uint64, error) {
	val, closer, err := r.Get(reservedKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, s.pebbleError("read reserved slots", err)
	}
	defer closer.Close()
	body, err := openValue(reservedKey, val)
	if err != nil {
		return 0, s.corrupt("reserved slots", err)
	}
	if len(body) != 8 {
		return 0, s.corrupt("reserved slots", fmt.Errorf("%d bytes, want 8", len(body)))
	}
	return binary.BigEndian.Uint64(body), nil
}

// loadCommands reads every command stored apart from its record.
func (s *Store) loadCommands(r pebble.Reader) (map[replica.InstanceID]*replica.Payload, error) {
	cmds := make(map[replica.InstanceID]*replica.Payload)
	err := s.eachInstanceValue(r, prefixCommand, "command", func(id replica.InstanceID, body []byte) error {
		var m epaxospb.Payload
		if err := proto.Unmarshal(body, &m); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		p, err := wire.PayloadFromProto(&m)
		if err != nil {
			return err
		}
		cmds[id] = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cmds, nil
}

// loadRecords reads every instance record, taking a command stored apart
// from commands.
func (s *Store) loadRecords(r pebble.Reader, commands map[replica.InstanceID]*replica.Payload) ([]replica.InstanceRecord, error) {
	var recs []replica.InstanceRecord
	var m storagepb.InstanceRecord
	err := s.eachInstanceValue(r, prefixRecord, "record", func(id replica.InstanceID, body []byte) error {
		m.Reset()
		if err := proto.Unmarshal(body, &m); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		rec, err := recordFromProto(id, &m, commands[id])
		if err != nil {
			return err
		}
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// eachInstanceValue calls fn with the instance id and the checksummed body
// of every value of one kind (prefix: records or commands), in id order. A
// malformed key, a bad checksum or an error from fn is reported as
// corruption of that key.
func (s *Store) eachInstanceValue(r pebble.Reader, prefix byte, kind string, fn func(replica.InstanceID, []byte) error) (err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return s.pebbleError("read "+kind+"s", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = s.pebbleError("read "+kind+"s", cerr)
		}
	}()
	for ok := it.First(); ok; ok = it.Next() {
		key := it.Key()
		id, ok := parseInstanceKey(key, prefix)
		if !ok || id.Slot == 0 {
			return s.corrupt(describeKey(key), fmt.Errorf("malformed %s key", kind))
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return s.pebbleError("read "+describeKey(key), err)
		}
		body, err := openValue(key, val)
		if err != nil {
			return s.corrupt(describeKey(key), err)
		}
		if err := fn(id, body); err != nil {
			return s.corrupt(describeKey(key), err)
		}
	}
	if err := it.Error(); err != nil {
		return s.pebbleError("read "+kind+"s", err)
	}
	return nil
}

func (s *Store) loadExecuted(r pebble.Reader) (ids []replica.InstanceID, err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: executedLower, UpperBound: executedUpper})
	if err != nil {
		return nil, s.pebbleError("read executed log", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			ids, err = nil, s.pebbleError("read executed log", cerr)
		}
	}()
	var m storagepb.Executed
	var prev uint64
	for ok := it.First(); ok; ok = it.Next() {
		key := it.Key()
		pos, ok := parseExecutedKey(key)
		if !ok {
			return nil, s.corrupt(describeKey(key), errors.New("malformed executed-log key"))
		}
		if len(ids) > 0 && pos != prev+1 {
			return nil, s.corrupt(describeKey(key),
				fmt.Errorf("follows position %d: the executed log has a gap", prev))
		}
		prev = pos
		val, err := it.ValueAndErr()
		if err != nil {
			return nil, s.pebbleError("read "+describeKey(key), err)
		}
		body, err := openValue(key, val)
		if err != nil {
			return nil, s.corrupt(describeKey(key), err)
		}
		m.Reset()
		if err := proto.Unmarshal(body, &m); err != nil {
			return nil, s.corrupt(describeKey(key), fmt.Errorf("decode: %w", err))
		}
		id, err := executedFromProto(&m)
		if err != nil {
			return nil, s.corrupt(describeKey(key), err)
		}
		ids = append(ids, id)
	}
	if err := it.Error(); err != nil {
		return nil, s.pebbleError("read executed log", err)
	}
	return ids, nil
}

// Close closes the store. Calls after the first return ErrClosed.
func (s *Store) Close() (err error) {
	if !s.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	defer func() {
		// A store that failed may fail again while closing; its error
		// has been reported.
		if r := recover(); r != nil {
			if _, ok := r.(*fatalError); !ok {
				panic(r)
			}
			err = fmt.Errorf("storage: close %s: %w", s.dir, r.(*fatalError))
			if f := s.failed.Load(); f != nil {
				err = f
			}
		}
	}()
	if err := s.db.Close(); err != nil {
		if f := s.failed.Load(); f != nil {
			return f
		}
		return fmt.Errorf("storage: close %s: %w", s.dir, err)
	}
	return nil
}

func (s *Store) usable() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if f := s.failed.Load(); f != nil {
		return f
	}
	return nil
}

// recoverFatal is deferred by every call into pebble that can reach its
// Fatalf on the caller's goroutine: it turns the panic into an ErrFailed
// error and marks the store failed. Any other panic goes on.
func (s *Store) recoverFatal(errp *error, op string) {
	r := recover()
	if r == nil {
		return
	}
	f, ok := r.(*fatalError)
	if !ok {
		panic(r)
	}
	fe := &failedError{dir: s.dir, op: op, err: f}
	if s.failed.CompareAndSwap(nil, fe) {
		s.log.Error("store failed; restart the replica", "dir", s.dir, "op", op, "error", f.msg)
	}
	*errp = fe
}

// pebbleError wraps an error from pebble, marking pebble's corruption errors
// with ErrCorrupt.
func (s *Store) pebbleError(op string, err error) error {
	if pebble.IsCorruptionError(err) {
		return s.corrupt(op, err)
	}
	return fmt.Errorf("storage: %s: %s: %w", s.dir, op, err)
}

func (s *Store) corrupt(what string, err error) error {
	return &corruptError{dir: s.dir, what: what, err: err}
}

// corruptError reads "storage: data/alpha: record 1.7: checksum mismatch:
// the data is corrupt; restore this replica from its peers".
type corruptError struct {
	dir, what string
	err       error
}

func (e *corruptError) Error() string {
	msg := e.err.Error()
	// pebble joins a placeholder error, on its own line, to the corruption
	// errors of its files; name the file instead.
	if info := pebble.ExtractDataCorruptionInfo(e.err); info != nil {
		msg, _, _ = strings.Cut(msg, "\n")
		msg += " (in " + info.Path + ")"
	}
	return fmt.Sprintf("storage: %s: %s: %s: the data is corrupt; restore this replica from its peers",
		e.dir, e.what, msg)
}

func (e *corruptError) Unwrap() []error { return []error{ErrCorrupt, e.err} }

// mismatchError reads "storage: data dir data/alpha belongs to replica 0 of
// cluster 3f2a (3 replicas), not replica 1 of cluster 9c01 (3 replicas)".
type mismatchError struct {
	dir         string
	found, want Identity
}

func (e *mismatchError) Error() string {
	return fmt.Sprintf("storage: data dir %s belongs to %v, not %v", e.dir, e.found, e.want)
}

func (e *mismatchError) Unwrap() error { return ErrIdentityMismatch }

// failedError reads "storage: data/alpha: save: pebble: fatal commit error:
// ...: the store failed; restart the replica".
type failedError struct {
	dir, op string
	err     *fatalError
}

func (e *failedError) Error() string {
	return fmt.Sprintf("storage: %s: %s: %v: the store failed; restart the replica", e.dir, e.op, e.err)
}

func (e *failedError) Unwrap() []error { return []error{ErrFailed, e.err} }
