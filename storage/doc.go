// Package storage is the durable store of one epaxosd replica: the instance
// records the protocol core hands out in each Ready (replica.InstanceRecord)
// and the log of the instances it executed, kept in a pebble database in the
// replica's data directory.
//
// It owns the data directory and its on-disk format. It never interprets the
// protocol: it stores what it is given, returns it unchanged, and refuses to
// return anything it cannot prove intact.
//
// # Durability
//
// Save writes everything it is given in one pebble batch committed with
// pebble.Sync, so it returns only once the batch is in the write-ahead log
// and the log is synced; a crash afterwards loses none of it, and a crash
// during Save keeps either all of the batch or none of it. The daemon calls
// Save once per Ready, so one fsync covers every instance of the Ready.
// Save is safe for concurrent use: pebble's commit pipeline writes concurrent
// batches to the WAL in order and one WAL sync covers every batch queued
// behind it, so concurrent synced Saves (the core loop's records and the
// applier's executed ids, say) share fsyncs (group commit) rather than
// taking turns. Saves that append to the executed log are serialized among
// themselves so that log positions are durable in order.
//
// A failed WAL write or sync is fatal to pebble (its commit pipeline cannot
// continue). The store routes pebble's Fatalf to the logger and turns it
// into an error from Save wrapping ErrFailed; every later call fails the
// same way, and the replica must restart and recover from what is durable.
// Where pebble hits a fatal error on one of its own goroutines (a failed
// MANIFEST sync during a flush, for instance) the process panics with
// pebble's message, as pebble's default logger would exit.
//
// Open syncs the parent of every directory it creates, so a crash cannot
// take away the data directory itself. On a new store it rotates pebble's
// first WAL (see Integrity).
//
// # Integrity
//
// Every value carries a CRC32C checksum of its key and its encoded message.
// Load checks every checksum and every decode, and pebble checks its own
// blocks; any failure is an error wrapping ErrCorrupt that names the data
// directory and the record. Corrupt data is never returned: the replica must
// be restored from its peers.
//
// One gap is pebble's: WAL replay stops quietly at the first damaged record
// of the newest WAL and treats the rest as a torn tail, as a crash leaves it,
// unless a later 32 KiB WAL block holds a record written after a sync past
// the damage, which proves the damage is corruption (WAL sync offsets,
// pebble.FormatWALSyncChunks). Damage in the newest WAL's last block can
// therefore drop synced records without an error. pebble writes the first
// WAL of a new store without sync offsets, so Open flushes once after
// creating a store to move every Save into a WAL that has them.
//
// # On-disk format (version 3)
//
// Keys (integers big-endian, so pebble's byte order is numeric order):
//
//	"m"                               Meta: format version and Identity
//	"c" ‖ replica u32 ‖ slot u64      Payload: the command of instance (replica, slot)
//	"i" ‖ replica u32 ‖ slot u64      InstanceRecord of instance (replica, slot)
//	"r"                               ReservedSlots: u64, this replica's own
//	                                  slots up to it may be in use (absent: 0)
//	"x" ‖ position u64                Executed: the instance executed at position
//
// Values: CRC32C-Castagnoli(key ‖ body) as 4 bytes big-endian, then body,
// the protobuf encoding of the message named above (proto/storage.proto,
// package epaxos.storage.v1; Payload is epaxos.v1's), except ReservedSlots:
// 8 bytes big-endian. Overwriting an instance record replaces it. Executed
// positions start at 1 and are contiguous.
//
// A record's command is stored apart, under the command key, and the record
// says so (command_stored_apart): an instance's record is rewritten at each
// phase, its command usually never changes, and the command is the largest
// part. Save writes the command only with a record that is not
// CommandUnchanged, in the same batch; a record that is relies on the
// command written before it, which is durable whenever the record is, since
// batches become durable in order. A command key whose record does not
// refer to it is ignored. A record whose initial command equals its command
// stores it once, with init_command_is_command set.
//
// Versions: 1 stored the initial command in full; 2 added
// init_command_is_command; 3 stores commands apart. This version reads all
// three (a version 1 or 2 record holds its command) and marks the directory
// version 3 when it opens it.
//
// The meta value is written, synced, on the first open of a directory; later
// opens refuse a directory whose Identity differs from theirs or whose format
// version they do not know.
package storage
