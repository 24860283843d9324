#!/usr/bin/env bash
# bench/run.sh: compare epaxosd with a Raft baseline on this machine.
#
# It builds epaxosd and bench/raftkv, then, one system at a time:
#   1. a 3-replica epaxosd cluster: `epaxosd agent` processes from a generated
#      config.hcl, kv plugin, durable data directories;
#   2. a 3-node raftkv cluster with the bolt store (raft-boltdb, fsync on);
#   3. a 3-node raftkv cluster with the in-memory store;
# waits until each answers, runs
#   epaxosd bench -addr A,B,C -duration $DURATION -clients $CLIENTS -conflict $CONFLICT $BENCH_ARGS
# against it, stops it, and at the end prints one summary line per system.
#
# Everything runs on 127.0.0.1; the load generator shares the machine with
# the servers, so the numbers are only indicative.
#
# Usage: bench/run.sh            (from anywhere)
# Environment:
#   DURATION=10s CLIENTS=32 CONFLICT=0   the bench flags above
#   BENCH_ARGS="-warmup 2s -reads 0"     more flags for `epaxosd bench`
#   SYSTEMS="epaxosd raftkv-bolt raftkv-mem"   which systems, in order
#   WORK=DIR                             where to keep binaries, configs, data,
#                                        logs and -out statistics
#                                        (default: a new temporary directory,
#                                        kept and printed at the end)
#   REPLICAS=3                           replicas (nodes) per cluster: 3, 5 or 7
#   PORT_BASE=17100                      ports PORT_BASE+1.. are used
#   PPROF=1                              epaxosd replica i serves pprof on
#                                        127.0.0.1:PORT_BASE+40+i
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10s}
CLIENTS=${CLIENTS:-32}
CONFLICT=${CONFLICT:-0}
BENCH_ARGS=${BENCH_ARGS:-}
SYSTEMS=${SYSTEMS:-"epaxosd raftkv-bolt raftkv-mem"}
WORK=${WORK:-$(mktemp -d -t epaxosd-bench.XXXXXX)}
PORT_BASE=${PORT_BASE:-17100}
REPLICAS=${REPLICAS:-3}
case $REPLICAS in 3 | 5 | 7) ;; *) echo "REPLICAS must be 3, 5 or 7" >&2; exit 2 ;; esac
BIN=$WORK/bin
mkdir -p "$BIN"

PIDS=()
stop_all() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}
trap stop_all EXIT

echo "==> building into $BIN" >&2
(cd "$ROOT" && go build -o "$BIN/epaxosd" ./cmd/epaxosd)
(cd "$ROOT/bench/raftkv" && go build -o "$BIN/raftkv" ./cmd/raftkv)

# wait_ready ADDRS: returns once a write through ADDRS succeeds.
wait_ready() {
	"$BIN/epaxosd" propose -addr "$1" -timeout 60s -access write bench-ready 1 >/dev/null
}

# run_bench NAME ADDRS: runs the benchmark and records its summary line.
declare -A SUMMARY
run_bench() {
	local name=$1 addrs=$2
	local cmd=("$BIN/epaxosd" bench -addr "$addrs" -duration "$DURATION" -clients "$CLIENTS" -conflict "$CONFLICT")
	# shellcheck disable=SC2206 # BENCH_ARGS is split on purpose
	cmd+=($BENCH_ARGS -out "$WORK/$name.jsonl")
	echo "==> $name: epaxosd bench -addr $addrs -duration $DURATION -clients $CLIENTS -conflict $CONFLICT $BENCH_ARGS" >&2
	SUMMARY[$name]=$("${cmd[@]}" 2> >(tee "$WORK/$name.bench.log" >&2))
	echo "$name: ${SUMMARY[$name]}" >&2
}

start_epaxosd() {
	local dir=$WORK/epaxosd names=() addrs=() i
	for ((i = 0; i < REPLICAS; i++)); do names+=("r$i"); done
	rm -rf "$dir"
	mkdir -p "$dir"
	{
		echo 'name = "r0"'
		echo 'log_level = "warn"'
		echo 'plugin "kv" {}'
		for ((i = 0; i < REPLICAS; i++)); do
			printf 'replica "%s" {\n  pid     = %d\n  address = "127.0.0.1:%d"\n}\n' "${names[$i]}" "$i" $((PORT_BASE + 1 + i))
		done
	} >"$dir/config.hcl"
	# data_dir defaults to data/<name> beside the configuration file.
	for ((i = 0; i < REPLICAS; i++)); do
		local prof=()
		[ -n "${PPROF:-}" ] && prof=(-pprof "127.0.0.1:$((PORT_BASE + 40 + i))")
		EPAXOS_NAME=${names[$i]} "$BIN/epaxosd" agent -config "$dir/config.hcl" "${prof[@]}" 2>"$dir/${names[$i]}.log" &
		PIDS+=($!)
		addrs+=("127.0.0.1:$((PORT_BASE + 1 + i))")
	done
	ADDRS=$(IFS=,; echo "${addrs[*]}")
}

start_raftkv() {
	local store=$1 dir=$WORK/raftkv-$1 peers="" addrs=() i
	rm -rf "$dir"
	mkdir -p "$dir"
	for ((i = 1; i <= REPLICAS; i++)); do
		peers+="${peers:+,}n$i=127.0.0.1:$((PORT_BASE + 10 + i))/127.0.0.1:$((PORT_BASE + 20 + i))"
		addrs+=("127.0.0.1:$((PORT_BASE + 20 + i))")
	done
	for ((i = 1; i <= REPLICAS; i++)); do
		local boot=()
		[ "$i" = 1 ] && boot=(-bootstrap)
		"$BIN/raftkv" -id "n$i" -peers "$peers" -data "$dir/n$i" -store "$store" "${boot[@]}" 2>"$dir/n$i.log" &
		PIDS+=($!)
	done
	ADDRS=$(IFS=,; echo "${addrs[*]}")
}

for sys in $SYSTEMS; do
	case $sys in
	epaxosd) start_epaxosd ;;
	raftkv-bolt) start_raftkv bolt ;;
	raftkv-mem) start_raftkv mem ;;
	*) echo "unknown system $sys" >&2; exit 2 ;;
	esac
	wait_ready "$ADDRS"
	run_bench "$sys" "$ADDRS"
	stop_all
done

echo "==> summaries (work directory $WORK)" >&2
for sys in $SYSTEMS; do
	echo "$sys: ${SUMMARY[$sys]}"
done
