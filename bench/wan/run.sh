#!/usr/bin/env bash
# bench/wan/run.sh: epaxosd and a Raft baseline in a five-site wide-area
# deployment, emulated on this machine (see bench/wan/README.md).
#
# Each site of wan-rtt.csv (VA, CA, OR, EU, JP) gets one replica; every
# message between two replicas is delayed by half the round-trip time
# between their sites (epaxosd: emulated_peer_delay; raftkv: -delay), and
# each site's clients talk to their own site's replica with no delay.
#
#   MODE=latency (default)  CLIENTS clients per site, 0% conflicts: one
#                           `epaxosd bench` per site, all at once, each with
#                           -addr its own replica only. The table compares
#                           each site's median latency with the best case
#                           the matrix allows.
#   MODE=hotkey             HOT_CLIENTS clients per site, 100% conflicts on
#                           one key shared by all sites, near saturation;
#                           the per-second statistics (-out) show whether
#                           latency stays bounded over time.
#   MODE=both               latency, then hotkey.
#
# For each mode it runs epaxosd (5 `epaxosd agent` replicas, kv plugin,
# durable data directories, thrifty = false so that a command leader waits
# for the nearest replicas of its fast quorum) and then raftkv (5 nodes,
# bolt store, the LEADER site's node bootstrapped and waited for as the
# leader; followers forward their clients' requests to it across the
# emulated network).
#
# Usage: bench/wan/run.sh          (from anywhere)
# Environment:
#   MODE=latency|hotkey|both
#   SYSTEMS="epaxosd raftkv"    which systems, in order
#   DURATION=20s WARMUP=3s      measured time and warmup of each bench
#   CLIENTS=8                   clients per site, latency mode
#   HOT_CLIENTS=1024            clients per site, hotkey mode (near the knee
#                               on 2 cores; see README.md)
#   LEADER=CA                   raftkv's leader site
#   TIMEOUT=1s                  epaxosd's timeout (above the largest RTT)
#   RTT=bench/wan/wan-rtt.csv   the round-trip matrix (from,to,rtt_ms)
#   BENCH_ARGS=""               more flags for every `epaxosd bench`
#   WORK=DIR                    binaries, configs, data and logs (default: a
#                               new temporary directory, kept)
#   RESULTS=bench/wan/results   each run writes RESULTS/wan-STAMP/: MODE.txt
#                               (the table), MODE.jsonl (one JSON object per
#                               system and site) and persecond/ (-out files)
#   PORT_BASE=17800             ports PORT_BASE+1..PORT_BASE+25 are used
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MODE=${MODE:-latency}
SYSTEMS=${SYSTEMS:-"epaxosd raftkv"}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-3s}
CLIENTS=${CLIENTS:-8}
HOT_CLIENTS=${HOT_CLIENTS:-1024}
LEADER=${LEADER:-CA}
TIMEOUT=${TIMEOUT:-1s}
RTT=${RTT:-$HERE/wan-rtt.csv}
BENCH_ARGS=${BENCH_ARGS:-}
WORK=${WORK:-$(mktemp -d -t epaxosd-wan.XXXXXX)}
RESULTS=${RESULTS:-$HERE/results}
PORT_BASE=${PORT_BASE:-17800}
case $MODE in latency) MODES=(latency) ;; hotkey) MODES=(hotkey) ;; both) MODES=(latency hotkey) ;;
*) echo "MODE must be latency, hotkey or both" >&2; exit 2 ;; esac
for sys in $SYSTEMS; do
	case $sys in epaxosd | raftkv) ;; *) echo "unknown system $sys (epaxosd, raftkv)" >&2; exit 2 ;; esac
done

# The matrix: sites in order of first appearance, and a symmetric lookup.
mapfile -t SITES < <(awk -F, '!/^#/ && $1 != "from" && NF >= 3 {
	for (i = 1; i <= 2; i++) if (!($i in seen)) { seen[$i] = 1; print $i } }' "$RTT")
N=${#SITES[@]}
rtt() {
	awk -F, -v a="$1" -v b="$2" '!/^#/ && (($1 == a && $2 == b) || ($1 == b && $2 == a)) { print $3; found = 1; exit }
		END { if (!found) exit 1 }' "$RTT" || { echo "$RTT: no round-trip time between $1 and $2" >&2; exit 2; }
}
for a in "${SITES[@]}"; do for b in "${SITES[@]}"; do [ "$a" = "$b" ] || rtt "$a" "$b" >/dev/null; done; done
case $N in 3 | 5 | 7) ;; *) echo "$RTT has $N sites; epaxosd and raftkv need 3, 5 or 7" >&2; exit 2 ;; esac
[[ " ${SITES[*]} " == *" $LEADER "* ]] || { echo "LEADER=$LEADER is not a site of $RTT (${SITES[*]})" >&2; exit 2; }
lower() { tr '[:upper:]' '[:lower:]' <<<"$1"; }

# Quorum sizes, as replica/quorum.go: N = 2F+1, fast quorum F + floor((F+1)/2),
# slow (and Raft) quorum F+1, the command leader counted in both.
F=$(((N - 1) / 2))
FAST=$((F + (F + 1) / 2))
SLOW=$((F + 1))

# nearest S K: the K-th smallest round-trip time from S to another site.
nearest() {
	local o
	for o in "${SITES[@]}"; do [ "$o" = "$1" ] || rtt "$1" "$o"; done | sort -g | sed -n "${2}p"
}
# best_epaxos S: a command from S commits on the fast path once the nearest
# FAST-1 other replicas answer: one round trip to the farthest of them.
best_epaxos() { nearest "$1" $((FAST - 1)); }
# best_raft S: S's node forwards to the leader (a round trip unless S is
# the leader), which commits once the nearest SLOW-1 followers answer.
best_raft() {
	local to=0
	[ "$1" = "$LEADER" ] || to=$(rtt "$1" "$LEADER")
	awk -v a="$to" -v b="$(nearest "$LEADER" $((SLOW - 1)))" 'BEGIN { printf "%.1f", a + b }'
}
# delays S: S's one-way delay to every other site, NAME=DURATION,...
delays() {
	local o out=""
	for o in "${SITES[@]}"; do
		[ "$o" = "$1" ] || out+="${out:+,}$(lower "$o")=$(awk -v r="$(rtt "$1" "$o")" 'BEGIN { printf "%.3fms", r / 2 }')"
	done
	echo "$out"
}

BIN=$WORK/bin
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/wan-$STAMP
mkdir -p "$BIN" "$OUT/persecond"

PIDS=()
stop_all() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	PIDS=()
}
trap stop_all EXIT

# Refuse to start beside another cluster on our ports: its replicas would
# refuse ours (another cluster id) and the run would hang.
for p in $(seq $((PORT_BASE + 1)) $((PORT_BASE + 25))); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		echo "port $p is in use (another benchmark or cluster?); set PORT_BASE to another range" >&2
		exit 1
	fi
done

echo "==> building into $BIN" >&2
(cd "$ROOT" && go build -o "$BIN/epaxosd" ./cmd/epaxosd)
(cd "$ROOT/bench/raftkv" && go build -o "$BIN/raftkv" ./cmd/raftkv)

# wait_ready ADDR: returns once a write through ADDR succeeds.
wait_ready() {
	"$BIN/epaxosd" propose -addr "$1" -timeout 90s -access write "wan-ready-$1" 1 >/dev/null
}

ADDRS=()
start_epaxosd() {
	local dir=$WORK/$mode/epaxosd i
	rm -rf "$dir"
	mkdir -p "$dir"
	ADDRS=()
	{
		echo "# generated by bench/wan/run.sh"
		echo "timeout   = \"$TIMEOUT\""
		echo "thrifty   = false"
		echo "log_level = \"warn\""
		echo 'plugin "kv" {}'
		for i in "${!SITES[@]}"; do
			printf 'replica "%s" {\n  pid     = %d\n  address = "127.0.0.1:%d"\n}\n' "$(lower "${SITES[$i]}")" "$i" $((PORT_BASE + 1 + i))
		done
	} >"$dir/config.hcl"
	for i in "${!SITES[@]}"; do
		local s=${SITES[$i]}
		# Each replica's own row of the matrix; data_dir defaults to
		# data/<name> beside the configuration file.
		EPAXOS_NAME=$(lower "$s") EPAXOS_EMULATED_PEER_DELAY=$(delays "$s") \
			"$BIN/epaxosd" agent -config "$dir/config.hcl" 2>"$dir/$s.log" &
		PIDS+=($!)
		ADDRS+=("127.0.0.1:$((PORT_BASE + 1 + i))")
	done
}

start_raftkv() {
	local dir=$WORK/$mode/raftkv peers="" i
	rm -rf "$dir"
	mkdir -p "$dir"
	ADDRS=()
	for i in "${!SITES[@]}"; do
		peers+="${peers:+,}$(lower "${SITES[$i]}")=127.0.0.1:$((PORT_BASE + 11 + i))/127.0.0.1:$((PORT_BASE + 21 + i))"
		ADDRS+=("127.0.0.1:$((PORT_BASE + 21 + i))")
	done
	for i in "${!SITES[@]}"; do
		local s=${SITES[$i]} lead=()
		[ "$s" = "$LEADER" ] && lead=(-lead)
		"$BIN/raftkv" -id "$(lower "$s")" -peers "$peers" -data "$dir/$s" -store bolt \
			-delay "$(delays "$s")" "${lead[@]}" 2>"$dir/$s.log" &
		PIDS+=($!)
	done
	# -lead reports the leadership on stderr.
	local waited=0
	until grep -q "is the leader" "$dir/$LEADER.log" 2>/dev/null; do
		if grep -q "raftkv: -lead:" "$dir/$LEADER.log" 2>/dev/null || [ $waited -ge 900 ]; then
			echo "raftkv: $LEADER did not become the leader; see $dir/$LEADER.log" >&2
			exit 1
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	echo "==> raftkv: $LEADER is the leader" >&2
}

# field NAME FILE: the value of NAME=VALUE in a bench summary line.
field() { grep -o "$1=[^ ]*" "$2" | head -1 | cut -d= -f2; }

# over_time FILE: statistics of the measured per-second p99s of an -out
# file: "intervals median max first last" (first and last: the first and
# last fifth of the intervals, each the median of its p99s).
over_time() {
	awk '
	/"warmup":false/ && match($0, /"p99_ms":[0-9.eE+-]+/) { v[n++] = substr($0, RSTART + 9, RLENGTH - 9) + 0 }
	function med(lo, hi,   a, i, k, j, t) {
		k = 0
		for (i = lo; i < hi; i++) a[k++] = v[i]
		for (i = 1; i < k; i++) { t = a[i]; for (j = i - 1; j >= 0 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
		return k ? (k % 2 ? a[int(k / 2)] : (a[k / 2 - 1] + a[k / 2]) / 2) : 0
	}
	END {
		if (n == 0) { print "0 0 0 0 0"; exit }
		m = 0; for (i = 0; i < n; i++) if (v[i] > m) m = v[i]
		f = int(n / 5); if (f < 1) f = 1
		printf "%d %.1f %.1f %.1f %.1f\n", n, med(0, n), m, med(0, f), med(n - f, n)
	}' "$1"
}

# run_sites SYSTEM MODE CLIENTS CONFLICT: one bench per site, all at once.
run_sites() {
	local sys=$1 mode=$2 clients=$3 conflict=$4 i pids=()
	for i in "${!SITES[@]}"; do
		local s=${SITES[$i]} base=$OUT/persecond/$mode-$sys-${SITES[$i]}
		# shellcheck disable=SC2086 # BENCH_ARGS is split on purpose
		# Each site's private keys are its own (a key two sites write is a
		# conflict); the hot key of the hotkey mode is shared by all.
		local prefix=bench
		[ "$mode" = hotkey ] || prefix=bench-$s
		"$BIN/epaxosd" bench -addr "${ADDRS[$i]}" -duration "$DURATION" -warmup "$WARMUP" \
			-clients "$clients" -conflict "$conflict" -seed $((i + 1)) -key-prefix "$prefix" $BENCH_ARGS -out "$base.jsonl" \
			>"$WORK/$mode/$sys-$s.summary" 2>"$WORK/$mode/$sys-$s.bench.log" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || echo "warning: $sys bench at ${SITES[$i]} failed; see $WORK/$mode/$sys-${SITES[$i]}.bench.log" >&2
	done
}

# record SYSTEM MODE CLIENTS CONFLICT: appends one JSON object per site.
record() {
	local sys=$1 mode=$2 clients=$3 conflict=$4 s
	for s in "${SITES[@]}"; do
		local sum=$WORK/$mode/$sys-$s.summary best leader=""
		if [ "$sys" = epaxosd ]; then best=$(best_epaxos "$s"); else best=$(best_raft "$s") leader=",\"leader\":\"$LEADER\""; fi
		read -r nint med max first last < <(over_time "$OUT/persecond/$mode-$sys-$s.jsonl")
		printf '{"stamp":"%s","mode":"%s","system":"%s","site":"%s","replicas":%d,"clients":%d,"conflict":%s,"duration":"%s","best_case_ms":%s,"ops_per_s":%s,"p50_ms":%s,"p90_ms":%s,"p99_ms":%s,"p999_ms":%s,"errors":%s,"p50_over_best":%s,"intervals":%d,"interval_p99_median_ms":%s,"interval_p99_max_ms":%s,"interval_p99_first_ms":%s,"interval_p99_last_ms":%s%s}\n' \
			"$STAMP" "$mode" "$sys" "$s" "$N" "$clients" "$conflict" "$DURATION" "$best" \
			"$(field ops/s "$sum" || echo 0)" "$(field p50_ms "$sum" || echo null)" "$(field p90_ms "$sum" || echo null)" \
			"$(field p99_ms "$sum" || echo null)" "$(field p999_ms "$sum" || echo null)" "$(field errors "$sum" || echo null)" \
			"$(awk -v p="$(field p50_ms "$sum" || echo 0)" -v b="$best" 'BEGIN { printf "%.3f", p / b }')" \
			"$nint" "$med" "$max" "$first" "$last" \
			"$leader" >>"$OUT/$mode.jsonl"
	done
}

# value JSONL SYSTEM SITE KEY: one number from the results.
value() {
	awk -v sys="\"system\":\"$2\"" -v site="\"site\":\"$3\"" -v key="\"$4\":" '
	index($0, sys) && index($0, site) && (i = index($0, key)) {
		v = substr($0, i + length(key)); sub(/[,}].*/, "", v); print v; exit }' "$1"
}

# table MODE: the results of MODE as a table.
table() {
	local mode=$1 f=$OUT/$1.jsonl s sys
	local has_e=0 has_r=0
	grep -q '"system":"epaxosd"' "$f" && has_e=1
	grep -q '"system":"raftkv"' "$f" && has_r=1
	if [ "$mode" = latency ]; then
		echo "Five sites, ${CLIENTS} clients per site at its own replica, 0% conflicts, $DURATION (ms; best case from $(basename "$RTT"))"
		printf '%-5s %8s' site best
		[ $has_e = 1 ] && printf ' %9s %9s %10s' epaxos_p50 epaxos_p99 p50/best
		[ $has_r = 1 ] && printf ' %10s %9s %9s' raft_best raft_p50 raft_p99
		echo
		for s in "${SITES[@]}"; do
			printf '%-5s %8s' "$s" "$(best_epaxos "$s")"
			if [ $has_e = 1 ]; then
				local ratio
				ratio=$(value "$f" epaxosd "$s" p50_over_best)
				printf ' %9s %9s %6s %-3s' "$(value "$f" epaxosd "$s" p50_ms)" "$(value "$f" epaxosd "$s" p99_ms)" "$ratio" \
					"$(awk -v r="$ratio" 'BEGIN { print (r <= 1.10 ? "ok" : "!!") }')"
			fi
			[ $has_r = 1 ] && printf ' %10s %9s %9s' "$(best_raft "$s")" "$(value "$f" raftkv "$s" p50_ms)" "$(value "$f" raftkv "$s" p99_ms)"
			echo
		done
		echo "ok: epaxosd's median within 10% of the best case; raft: leader at $LEADER"
	else
		echo "Five sites, ${HOT_CLIENTS} clients per site, 100% conflicts on one key, $DURATION (ms; p99 per second: median, max, first and last fifth of the run)"
		printf '%-8s %-5s %8s %8s %8s %9s %9s %9s %9s\n' system site ops/s p50 p99 s_p99_med s_p99_max first last
		for sys in $SYSTEMS; do
			grep -q "\"system\":\"$sys\"" "$f" || continue
			for s in "${SITES[@]}"; do
				printf '%-8s %-5s %8s %8s %8s %9s %9s %9s %9s\n' "$sys" "$s" \
					"$(value "$f" "$sys" "$s" ops_per_s)" "$(value "$f" "$sys" "$s" p50_ms)" "$(value "$f" "$sys" "$s" p99_ms)" \
					"$(value "$f" "$sys" "$s" interval_p99_median_ms)" "$(value "$f" "$sys" "$s" interval_p99_max_ms)" \
					"$(value "$f" "$sys" "$s" interval_p99_first_ms)" "$(value "$f" "$sys" "$s" interval_p99_last_ms)"
			done
		done
	fi
}

echo "==> sites ${SITES[*]}: fast quorum $FAST of $N, slow quorum $SLOW; work $WORK; results $OUT" >&2
for mode in "${MODES[@]}"; do
	if [ "$mode" = latency ]; then clients=$CLIENTS conflict=0; else clients=$HOT_CLIENTS conflict=100; fi
	for sys in $SYSTEMS; do
		echo "==> $mode: $sys, $clients clients per site, $conflict% conflicts, $DURATION" >&2
		if [ "$sys" = epaxosd ]; then start_epaxosd; else start_raftkv; fi
		for addr in "${ADDRS[@]}"; do wait_ready "$addr"; done
		run_sites "$sys" "$mode" "$clients" "$conflict"
		# (Checked before stopping: a stopping cluster loses its leader.)
		if [ "$sys" = raftkv ] && grep -q "lost the leadership" "$WORK/$mode/raftkv/$LEADER.log"; then
			echo "warning: raftkv's leader $LEADER lost the leadership during the run; see $WORK/$mode/raftkv/$LEADER.log" >&2
		fi
		stop_all
		record "$sys" "$mode" "$clients" "$conflict"
	done
	table "$mode" | tee "$OUT/$mode.txt"
done
echo "==> results in $OUT, work directory $WORK" >&2
