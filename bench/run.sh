#!/usr/bin/env bash
# bench/run.sh: compare epaxosd with a Raft baseline on this machine.
#
# It builds epaxosd, bench/raftkv and the echo baseline, then, one system at
# a time:
#   epaxosd      a REPLICAS-replica epaxosd cluster: `epaxosd agent`
#                processes from a generated config.hcl, kv plugin, durable
#                data directories;
#   raftkv-bolt  a REPLICAS-node raftkv cluster with the bolt store
#                (raft-boltdb, fsync on);
#   raftkv-mem   a REPLICAS-node raftkv cluster with the in-memory store;
#   echo         the unreplicated baseline (bench/raftkv/cmd/echo): one
#                process, one in-memory store, listening on REPLICAS
#                addresses so that the load generator opens as many
#                connections as against a cluster;
# starts it, waits until it answers, runs every cell (one `epaxosd bench`
# each, by default just one) against it, stops it, and at the end prints
# one summary line per run:
#   epaxosd bench -addr A,B,C -duration $DURATION -clients $CLIENTS \
#       -conflict $CONFLICT -value-size $VALUE_SIZE $BENCH_ARGS -out FILE
#
# Everything runs on 127.0.0.1; the load generator shares the machine with
# the servers, so the numbers are only indicative.
#
# Usage: bench/run.sh            (from anywhere)
# Environment:
#   DURATION=10s CLIENTS=32 CONFLICT=0 VALUE_SIZE=16   the bench flags above
#   WARMUP=2s                            -warmup (default: the bench's, 2s)
#   BENCH_ARGS="-reads 50"               more flags for every `epaxosd bench`
#   SYSTEMS="epaxosd raftkv-bolt raftkv-mem"   which systems, in order
#                                        (also epaxosd-thrifty: thrifty = true,
#                                        and echo, the unreplicated baseline)
#                                        (echo is the fourth choice)
#   CELLS="kind=matrix conflict=0 clients=32; kind=sweep clients=4 ..."
#                                        several bench runs against each
#                                        started system, separated by ';' or
#                                        newlines; each is key=value words:
#                                        kind (a label), conflict, value_size,
#                                        clients, rate (open loop instead of
#                                        clients), duration, warmup; missing
#                                        keys take the values above
#   RESULTS=DIR                          append one JSON line per run to
#                                        DIR/results.jsonl, and keep the
#                                        per-second statistics in
#                                        DIR/series/ and the bench output in
#                                        DIR/logs/ (bench/report reads DIR)
#   WORK=DIR                             where to keep binaries, configs, data,
#                                        logs and -out statistics
#                                        (default: a new temporary directory,
#                                        kept and printed at the end)
#   REPLICAS=3                           replicas (nodes) per cluster: 3, 5 or 7
#   PORT_BASE=17100                      ports PORT_BASE+1..PORT_BASE+47 are used
#   PPROF=1                              epaxosd replica i serves pprof on
#                                        127.0.0.1:PORT_BASE+40+i
#   BUILD=0                              use the binaries already in WORK/bin
#   KEEP_DATA=0                          delete each system's data directories
#                                        once it is stopped (logs stay)
#   PROGRESS=0                           keep the bench's progress lines out of
#                                        the terminal (they stay in its log)
#
# A system that exits during a run is restarted (from empty data) before
# the next cell; one that does not answer within 60 s is skipped. The exit
# status is 1 if any bench run failed or any system was skipped, after
# every system has run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10s}
CLIENTS=${CLIENTS:-32}
CONFLICT=${CONFLICT:-0}
VALUE_SIZE=${VALUE_SIZE:-16}
WARMUP=${WARMUP:-}
BENCH_ARGS=${BENCH_ARGS:-}
SYSTEMS=${SYSTEMS:-"epaxosd raftkv-bolt raftkv-mem"}
CELLS=${CELLS:-}
RESULTS=${RESULTS:-}
WORK=${WORK:-$(mktemp -d -t epaxosd-bench.XXXXXX)}
PORT_BASE=${PORT_BASE:-17100}
REPLICAS=${REPLICAS:-3}
BUILD=${BUILD:-1}
KEEP_DATA=${KEEP_DATA:-1}
PROGRESS=${PROGRESS:-1}
case $REPLICAS in 3 | 5 | 7) ;; *) echo "REPLICAS must be 3, 5 or 7" >&2; exit 2 ;; esac
for sys in $SYSTEMS; do
	case $sys in
	epaxosd | epaxosd-thrifty | raftkv-bolt | raftkv-mem | echo) ;;
	*) echo "unknown system $sys (want epaxosd, epaxosd-thrifty, raftkv-bolt, raftkv-mem or echo)" >&2; exit 2 ;;
	esac
done
mkdir -p "$WORK/bin"
WORK=$(cd "$WORK" && pwd) # the builds run in other directories
BIN=$WORK/bin

# The cells. Without CELLS, one run from DURATION, CLIENTS, CONFLICT and
# VALUE_SIZE, whose files are named after the system alone (as before
# cells existed).
LEGACY=0
CELL_LIST=()
while IFS= read -r line; do
	line=$(echo "$line" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
	[ -n "$line" ] && CELL_LIST+=("$line")
done < <(printf '%s\n' "$CELLS" | tr ';' '\n')
if [ ${#CELL_LIST[@]} = 0 ]; then
	LEGACY=1
	CELL_LIST=("kind=run")
fi
num='^[0-9]+([.][0-9]+)?$'
for kv in "CONFLICT=$CONFLICT" "VALUE_SIZE=$VALUE_SIZE" "CLIENTS=$CLIENTS"; do
	[[ ${kv#*=} =~ $num ]] || { echo "$kv is not a number" >&2; exit 2; }
done
for cell in "${CELL_LIST[@]}"; do
	for kv in $cell; do
		k=${kv%%=*} v=${kv#*=}
		case $k in
		kind | duration | warmup) [[ $kv == *=* && -n $v ]] || { echo "cell \"$cell\": $kv: want key=value" >&2; exit 2; } ;;
		conflict | value_size | clients | rate) [[ $v =~ $num ]] || { echo "cell \"$cell\": $k=$v is not a number" >&2; exit 2; } ;;
		*) echo "cell \"$cell\": unknown key $k (want kind, conflict, value_size, clients, rate, duration, warmup)" >&2; exit 2 ;;
		esac
	done
done
if [ -n "$RESULTS" ]; then
	mkdir -p "$RESULTS/series" "$RESULTS/logs"
	RESULTS=$(cd "$RESULTS" && pwd)
fi

PIDS=()       # the running system's processes
BENCH_PID=""  # the running `epaxosd bench`
stop_all() {
	local pid
	if [ -n "$BENCH_PID" ]; then
		kill -TERM "$BENCH_PID" 2>/dev/null || true
		wait "$BENCH_PID" 2>/dev/null || true
		BENCH_PID=""
	fi
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$BUILD" != 0 ]; then
	echo "==> building into $BIN" >&2
	(cd "$ROOT" && go build -o "$BIN/epaxosd" ./cmd/epaxosd)
	(cd "$ROOT/bench/raftkv" && go build -o "$BIN/raftkv" ./cmd/raftkv && go build -o "$BIN/echo" ./cmd/echo)
fi

# wait_ready ADDRS: returns once a write through ADDRS succeeds.
wait_ready() {
	"$BIN/epaxosd" propose -addr "$1" -timeout 60s -access write bench-ready 1 >/dev/null
}

# ports_free PORT...: exits if something listens on one of the ports (a
# benchmark would then measure whatever that is).
ports_free() {
	local p
	for p in "$@"; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "==> port $p is in use (another benchmark or cluster?); set PORT_BASE to another range" >&2
			exit 2
		fi
	done
}

# alive: whether every process of the running system is still running
# (an exited child stays a zombie until waited for, so kill -0 is not
# enough).
alive() {
	local pid state
	for pid in "${PIDS[@]}"; do
		state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
		[ "$state" != Z ] || return 1
	done
}

# json_str S: S as a JSON string.
json_str() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/\\t}
	s=${s//$'\n'/\\n}
	printf '"%s"' "$s"
}

# json_num S: S if it is a JSON number, else null.
json_num() {
	if [[ $1 =~ ^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$ ]]; then printf '%s' "$1"; else printf null; fi
}

# run_cell SYS CELL: runs one `epaxosd bench` against $ADDRS and records it.
declare -a SUMMARY_LINES=()
FAILED=()
RESTARTED=0
run_cell() {
	local sys=$1 cell=$2 kv k v
	local kind=run conflict=$CONFLICT value_size=$VALUE_SIZE clients=$CLIENTS rate="" duration=$DURATION warmup=$WARMUP
	for kv in $cell; do
		k=${kv%%=*} v=${kv#*=}
		case $k in
		kind) kind=$v ;; conflict) conflict=$v ;; value_size) value_size=$v ;; clients) clients=$v ;;
		rate) rate=$v ;; duration) duration=$v ;; warmup) warmup=$v ;;
		esac
	done
	local replicas=$REPLICAS
	[ "$sys" = echo ] && replicas=1 # one unreplicated copy of the store
	local tag=$sys
	if [ "$LEGACY" = 0 ]; then
		tag="$kind-$sys-r$replicas-c$conflict-v$value_size-n$clients"
		[ -n "$rate" ] && tag="$kind-$sys-r$replicas-c$conflict-v$value_size-rate$rate"
	fi
	local out=$WORK/$tag.jsonl log=$WORK/$tag.bench.log series=""
	if [ -n "$RESULTS" ]; then
		series=series/$tag.jsonl
		out=$RESULTS/$series log=$RESULTS/logs/$tag.log
	fi
	local cmd=("$BIN/epaxosd" bench -addr "$ADDRS" -duration "$duration")
	if [ -n "$rate" ]; then cmd+=(-rate "$rate"); else cmd+=(-clients "$clients"); fi
	cmd+=(-conflict "$conflict" -value-size "$value_size")
	[ -n "$warmup" ] && cmd+=(-warmup "$warmup")
	# shellcheck disable=SC2206 # BENCH_ARGS is split on purpose
	cmd+=($BENCH_ARGS -out "$out")
	echo "==> $tag: ${cmd[*]#"$BIN/"}" >&2
	local started rc=0 sumfile=$WORK/.summary f
	# The replicas' metrics files (epaxosd only): the lines this cell adds
	# are kept beside its series.
	declare -A mlines=()
	for f in "$WORK/$sys"/*.metrics.jsonl; do
		[ -f "$f" ] && mlines[$f]=$(wc -l <"$f")
	done
	started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	if [ "$PROGRESS" != 0 ]; then
		"${cmd[@]}" >"$sumfile" 2> >(tee "$log" >&2) &
	else
		"${cmd[@]}" >"$sumfile" 2>"$log" &
	fi
	BENCH_PID=$!
	wait "$BENCH_PID" || rc=$?
	BENCH_PID=""
	local summary
	summary=$(head -n 1 "$sumfile")
	SUMMARY_LINES+=("$tag: ${summary:-(no summary)}")
	echo "$tag: ${summary:-(no summary)}$([ "$rc" = 0 ] || echo " [exit $rc]")" >&2
	if [ "$rc" != 0 ]; then
		FAILED+=("$tag (exit $rc; see $log)")
	fi
	[ -n "$RESULTS" ] || return 0
	for f in "${!mlines[@]}"; do
		tail -n +$((mlines[$f] + 1)) "$f" >"$RESULTS/series/$tag.$(basename "$f" .metrics.jsonl).metrics.jsonl" || true
	done
	declare -A s=()
	for kv in $summary; do s[${kv%%=*}]=${kv#*=}; done
	local addrs_n
	addrs_n=$(awk -F, '{ print NF }' <<<"$ADDRS")
	{
		printf '{"kind":%s,"system":%s,"replicas":%d,"addrs":%d' "$(json_str "$kind")" "$(json_str "$sys")" "$replicas" "$addrs_n"
		printf ',"conflict":%s,"value_size":%s,"clients":%s,"rate":%s' "$conflict" "$value_size" "$([ -n "$rate" ] && echo 0 || echo "$clients")" "${rate:-0}"
		printf ',"duration":%s,"warmup":%s' "$(json_str "$duration")" "$(json_str "${warmup:-2s}")"
		printf ',"ops_per_s":%s,"p50_ms":%s,"p90_ms":%s' "$(json_num "${s[ops/s]:-}")" "$(json_num "${s[p50_ms]:-}")" "$(json_num "${s[p90_ms]:-}")"
		printf ',"p99_ms":%s,"p999_ms":%s,"errors":%s' "$(json_num "${s[p99_ms]:-}")" "$(json_num "${s[p999_ms]:-}")" "$(json_num "${s[errors]:-}")"
		printf ',"exit":%d,"restarted":%s,"started":%s,"series":%s,"log":%s' "$rc" "$([ "$RESTARTED" = 1 ] && echo true || echo false)" \
			"$(json_str "$started")" "$(json_str "$series")" "$(json_str "logs/$tag.log")"
		printf ',"bench_args":%s,"command":%s}\n' "$(json_str "$BENCH_ARGS")" "$(json_str "${cmd[*]}")"
	} >>"$RESULTS/results.jsonl"
	RESTARTED=0
}

# start_epaxosd [thrifty]: epaxosd with the kv plugin (thrifty: PreAccept
# and Accept to quorum members only, the system epaxosd-thrifty).
start_epaxosd() {
	local dir=$WORK/epaxosd${1:+-$1} names=() addrs=() ports=() i
	for ((i = 0; i < REPLICAS; i++)); do
		names+=("r$i")
		ports+=($((PORT_BASE + 1 + i)))
		[ -z "${PPROF:-}" ] || ports+=($((PORT_BASE + 40 + i)))
	done
	ports_free "${ports[@]}"
	rm -rf "$dir"
	mkdir -p "$dir"
	{
		echo 'name = "r0"'
		echo 'log_level = "warn"'
		[ "${1:-}" != thrifty ] || echo 'thrifty = true'
		echo 'plugin "kv" {}'
		for ((i = 0; i < REPLICAS; i++)); do
			printf 'replica "%s" {\n  pid     = %d\n  address = "127.0.0.1:%d"\n}\n' "${names[$i]}" "$i" $((PORT_BASE + 1 + i))
		done
	} >"$dir/config.hcl"
	# data_dir defaults to data/<name> beside the configuration file.
	for ((i = 0; i < REPLICAS; i++)); do
		local prof=()
		[ -n "${PPROF:-}" ] && prof=(-pprof "127.0.0.1:$((PORT_BASE + 40 + i))")
		EPAXOS_NAME=${names[$i]} EPAXOS_METRICS=$dir/${names[$i]}.metrics.jsonl \
			"$BIN/epaxosd" agent -config "$dir/config.hcl" "${prof[@]}" 2>"$dir/${names[$i]}.log" &
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
		ports_free $((PORT_BASE + 10 + i)) $((PORT_BASE + 20 + i))
	done
	for ((i = 1; i <= REPLICAS; i++)); do
		local boot=()
		[ "$i" = 1 ] && boot=(-bootstrap)
		"$BIN/raftkv" -id "n$i" -peers "$peers" -data "$dir/data/n$i" -store "$store" "${boot[@]}" 2>"$dir/n$i.log" &
		PIDS+=($!)
	done
	ADDRS=$(IFS=,; echo "${addrs[*]}")
}

start_echo() {
	local dir=$WORK/echo addrs=() i
	rm -rf "$dir"
	mkdir -p "$dir"
	for ((i = 1; i <= REPLICAS; i++)); do
		addrs+=("127.0.0.1:$((PORT_BASE + 30 + i))")
		ports_free $((PORT_BASE + 30 + i))
	done
	ADDRS=$(IFS=,; echo "${addrs[*]}")
	"$BIN/echo" -client "$ADDRS" 2>"$dir/echo.log" &
	PIDS+=($!)
}

# start SYS: starts SYS and waits until it answers.
start() {
	case $1 in
	epaxosd) start_epaxosd ;;
	epaxosd-thrifty) start_epaxosd thrifty ;;
	raftkv-bolt) start_raftkv bolt ;;
	raftkv-mem) start_raftkv mem ;;
	echo) start_echo ;;
	esac
	wait_ready "$ADDRS"
}

# stop SYS: stops SYS and, unless KEEP_DATA, deletes its data.
stop() {
	stop_all
	[ "$KEEP_DATA" != 0 ] || rm -rf "$WORK/$1/data"
}

# exited SYS CELL: returns 1, after stopping SYS and setting its logs
# aside, if a process of SYS has exited (during or after CELL).
exited() {
	alive && return 0
	local keep
	keep=$WORK/$1.exited.$(date +%s)
	stop "$1"
	mv "$WORK/$1" "$keep"
	echo "==> $1: a process exited during or after cell \"$2\" (logs in $keep)" >&2
	FAILED+=("$1 (a process exited during or after cell \"$2\"; logs in $keep)")
	return 1
}

for sys in $SYSTEMS; do
	size="$REPLICAS replicas"
	[ "$sys" != echo ] || size="$REPLICAS addresses"
	echo "==> starting $sys ($size, logs in $WORK/$sys)" >&2
	if ! start "$sys"; then
		echo "==> $sys did not answer; skipped (logs in $WORK/$sys)" >&2
		FAILED+=("$sys (did not start; see $WORK/$sys)")
		stop "$sys"
		continue
	fi
	prev="(start)"
	for cell in "${CELL_LIST[@]}"; do
		if ! exited "$sys" "$prev"; then
			if ! start "$sys"; then
				FAILED+=("$sys (did not restart)")
				break
			fi
			RESTARTED=1
		fi
		run_cell "$sys" "$cell"
		prev=$cell
	done
	exited "$sys" "$prev" || true
	stop "$sys"
done

echo "==> summaries (work directory $WORK${RESULTS:+, results in $RESULTS})" >&2
for line in "${SUMMARY_LINES[@]}"; do
	echo "$line"
done
if [ ${#FAILED[@]} -gt 0 ]; then
	echo "==> failed:" >&2
	printf '  %s\n' "${FAILED[@]}" >&2
	exit 1
fi
