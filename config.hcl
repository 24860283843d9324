# epaxosd configuration: one file describes the whole cluster, and each
# replica reads the same file, telling it which replica it is by `name`
# (or by EPAXOS_NAME). Every top-level setting can be overridden by an
# environment variable named EPAXOS_ and the setting in upper case, such as
# EPAXOS_NAME=bravo or EPAXOS_LOG_LEVEL=debug.
#
# This example runs three replicas on this machine:
#
#   EPAXOS_NAME=alpha   epaxosd agent -config config.hcl
#   EPAXOS_NAME=bravo   epaxosd agent -config config.hcl
#   EPAXOS_NAME=charlie epaxosd agent -config config.hcl

# This replica: one of the replica blocks below. Defaults to the host name.
name = "alpha"

# Where this replica keeps its state. Relative paths are relative to this
# file's directory. The default, data/<name>, gives each replica its own
# directory, so several replicas can share this file on one machine.
# data_dir = "data/alpha"

# How long to wait for a peer's response before treating it as slow
# (a Go duration such as "500ms" or "2s"; must be positive).
timeout = "500ms"

# Send protocol messages only to the replicas needed for a quorum, rather
# than to all of them. Cheaper, but a slow replica delays commits.
thrifty = false

# Batch proposals that arrive together into one consensus instance.
aggregate = true

# Log verbosity: trace, debug, info, warn or error.
log_level = "info"

# Random seed; 0 seeds from the clock. Set it to replay a run exactly.
seed = 0

# Requests per second that one client connection may send; above it the
# replica answers ResourceExhausted at once. 0 turns the limit off. The
# default is far above what one connection can get ordered: it only stops a
# runaway client from starving the others.
client_rate_limit = 50000

# Append one JSON line of statistics per second to this file (relative to
# this file's directory): client throughput and latency at this replica,
# fast and slow path commits, commit-to-execution delay. Off when unset; in
# a file the replicas share, give each its own with EPAXOS_METRICS.
# metrics = "data/alpha-metrics.jsonl"

# For benchmarks and tests only (off by default): hold every message this
# replica sends to the named replicas that long before sending it, which
# emulates a wide-area network on one machine (see bench/wan). Each replica
# has its own delays: in a file the replicas share, give each its own with
# EPAXOS_EMULATED_PEER_DELAY="bravo=35ms,charlie=70ms". An entry for this
# replica itself is ignored.
# emulated_peer_delay = { bravo = "35ms", charlie = "70ms" }

# Mutual TLS for peers and clients (see README.md, "TLS"). Without this
# block traffic is plain text and unauthenticated, and the agent warns.
# `epaxosd tls init certs` makes a dev CA and these files. Each replica
# uses its own certificate: give the others theirs with
# EPAXOS_TLS_CERT_FILE and EPAXOS_TLS_KEY_FILE.
# tls {
#   ca_file   = "certs/ca.pem"
#   cert_file = "certs/alpha.pem"
#   key_file  = "certs/alpha-key.pem"
# }

# The replicated state machine: exactly one plugin block, labelled with the
# plugin's name. Without a command, the label names a built-in plugin: "kv"
# (a key-value store) or "counter". For an external plugin, give the
# executable: a path (relative to this file's directory) or a bare name
# looked up in $PATH; args are passed to it.
plugin "kv" {
  # command = "./bin/my-plugin"
  # args    = ["--verbose"]
}

# The cluster: one block per replica, labelled with its name. An odd number
# of replicas from 3 to 15; pids are 0, 1, 2, ... with none skipped. The
# address (host:port) serves both peers and clients over gRPC, so peers and
# clients must be able to reach it.
replica "alpha" {
  pid     = 0
  address = "127.0.0.1:7001"
}

replica "bravo" {
  pid     = 1
  address = "127.0.0.1:7002"
}

replica "charlie" {
  pid     = 2
  address = "127.0.0.1:7003"
}
