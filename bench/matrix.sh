#!/usr/bin/env bash
# bench/matrix.sh: the whole benchmark on this machine, in one go, and its
# report (`make bench` runs it). Three parts, each a series of
# bench/run.sh invocations that start a system once and run several
# `epaxosd bench` cells against it:
#
#   matrix  for REPLICAS in MATRIX_REPLICAS, for each value size, the
#           systems epaxosd, raftkv-bolt and raftkv-mem, each cell of
#           CONFLICTS x CLIENT_COUNTS (closed loop); echo (the unreplicated
#           baseline) once per value size, whatever the replica count;
#   sweep   latency against throughput: SWEEP_SYSTEMS, 3 replicas, 0%
#           conflict, 16 B, one run per client count of SWEEP_CLIENTS (or
#           per open-loop rate of SWEEP_RATES);
#   hotkey  HOTKEY_SYSTEMS, 3 replicas, 100% conflict, HOTKEY_CLIENTS
#           clients for HOTKEY_DURATION, keeping its per-second statistics;
#   thrifty epaxosd-thrifty (PreAccept/Accept to quorum members only) for
#           MATRIX_REPLICAS, 16 B, THRIFTY_CONFLICTS x CLIENT_COUNTS, to set
#           beside the matrix's epaxosd (thrifty = false);
#
# then bench/report turns the results into BENCHMARKS.md and PNG plots.
# The results directory holds results.jsonl (a JSON line per run: system,
# replicas, conflict, value_size, clients, ops_per_s, p50/p90/p99/p999 ms,
# errors, the command line...), series/ (each run's per-second JSON),
# logs/ (each run's bench output), run.json (machine, settings, commands),
# matrix.log and summaries.txt.
#
# Usage: bench/matrix.sh            (from anywhere; make bench)
#        QUICK=1 bench/matrix.sh    a tiny subset (about a minute)
#        SMOKE=1 bench/matrix.sh    make bench-smoke: one short run per
#                                   system, fails unless all succeed
# Environment (defaults for the full run; QUICK and SMOKE change some):
#   DURATION=10s WARMUP=2s       each run's measured window and warmup
#   PARTS="matrix sweep hotkey"  which parts run
#   MATRIX_REPLICAS="3 5"  MATRIX_SYSTEMS="epaxosd raftkv-bolt raftkv-mem echo"
#   CONFLICTS="0 2 25 100"  VALUE_SIZES="16 1024"  CLIENT_COUNTS="32 128"
#   SWEEP_SYSTEMS="epaxosd raftkv-bolt raftkv-mem"
#   SWEEP_CLIENTS="1 4 16 32 64 128 256"  SWEEP_RATES=""  (rates: open loop
#                                instead)  SWEEP_DURATION=$DURATION
#   HOTKEY_SYSTEMS=epaxosd  HOTKEY_CLIENTS=128  HOTKEY_DURATION=30s
#   THRIFTY_CONFLICTS="0 100"   the thrifty part's conflicts
#   BENCH_ARGS=""                more flags for every `epaxosd bench`
#   RESULTS=DIR                  default bench/results/YYYYMMDD-HHMMSS
#                                (QUICK, SMOKE: WORK/results); must not
#                                hold results already
#   BENCHMARKS=FILE PLOTS=DIR    the report: default BENCHMARKS.md and
#                                docs/bench/ at the repository root
#                                (QUICK: in RESULTS; SMOKE: in WORK)
#   REPORT=0                     no report
#   WAN=DIR                      also report a bench/wan/run.sh results
#                                directory (wide-area section); the full
#                                report also includes bench/analysis.md
#   WORK=DIR                     binaries and server logs (default: a new
#                                temporary directory; SMOKE deletes it
#                                after a success unless KEEP_WORK=1)
#   PORT_BASE=17500              ports PORT_BASE+1..+47 (SMOKE: 17600;
#                                bench/run.sh's default is 17100)
#   PROGRESS=1                   show each run's per-second progress lines
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
truthy() { case ${1:-} in "" | 0 | false | no) return 1 ;; esac; }

# The variables the caller set: they make up the recorded command.
SETTING_NAMES=(QUICK SMOKE DURATION WARMUP PARTS MATRIX_REPLICAS MATRIX_SYSTEMS CONFLICTS VALUE_SIZES
	CLIENT_COUNTS SWEEP_SYSTEMS SWEEP_CLIENTS SWEEP_RATES SWEEP_DURATION HOTKEY_SYSTEMS HOTKEY_CLIENTS
	HOTKEY_DURATION THRIFTY_CONFLICTS BENCH_ARGS PORT_BASE WAN)
GIVEN=()
for v in "${SETTING_NAMES[@]}" RESULTS BENCHMARKS PLOTS REPORT WORK; do
	[ -n "${!v:-}" ] && GIVEN+=("$v=$(printf '%q' "${!v}")")
done

PROFILE=full
truthy "${QUICK:-}" && PROFILE=quick
truthy "${SMOKE:-}" && PROFILE=smoke
pick() { # pick FULL QUICK SMOKE: the default for this profile
	case $PROFILE in full) echo "$1" ;; quick) echo "$2" ;; smoke) echo "$3" ;; esac
}
DURATION=${DURATION:-$(pick 10s 2s 2s)}
WARMUP=${WARMUP:-$(pick 2s 1s 500ms)}
PARTS=${PARTS:-$(pick "matrix sweep hotkey thrifty" "matrix sweep hotkey" "matrix sweep hotkey")}
MATRIX_REPLICAS=${MATRIX_REPLICAS:-$(pick "3 5" 3 3)}
MATRIX_SYSTEMS=${MATRIX_SYSTEMS:-$(pick "epaxosd raftkv-bolt raftkv-mem echo" "epaxosd raftkv-bolt raftkv-mem echo" "epaxosd raftkv-mem echo")}
CONFLICTS=${CONFLICTS:-$(pick "0 2 25 100" "0 100" 0)}
VALUE_SIZES=${VALUE_SIZES:-$(pick "16 1024" 16 16)}
CLIENT_COUNTS=${CLIENT_COUNTS:-$(pick "32 128" 32 32)}
SWEEP_SYSTEMS=${SWEEP_SYSTEMS:-$(pick "epaxosd raftkv-bolt raftkv-mem" "epaxosd raftkv-bolt raftkv-mem" "epaxosd raftkv-mem")}
SWEEP_CLIENTS=${SWEEP_CLIENTS:-$(pick "1 4 16 32 64 128 256" "1 32" 4)}
SWEEP_RATES=${SWEEP_RATES:-}
SWEEP_DURATION=${SWEEP_DURATION:-$(pick "$DURATION" "$DURATION" 1s)}
HOTKEY_SYSTEMS=${HOTKEY_SYSTEMS:-epaxosd}
HOTKEY_CLIENTS=${HOTKEY_CLIENTS:-$(pick 128 128 32)}
HOTKEY_DURATION=${HOTKEY_DURATION:-$(pick 30s "$DURATION" "$DURATION")}
THRIFTY_CONFLICTS=${THRIFTY_CONFLICTS:-"0 100"}
BENCH_ARGS=${BENCH_ARGS:-}
PORT_BASE=${PORT_BASE:-$(pick 17500 17500 17600)}
PROGRESS=${PROGRESS:-0}
REPORT=${REPORT:-1}
DRY_RUN=${DRY_RUN:-}
if truthy "$DRY_RUN"; then
	WORK=${WORK:-"(a new temporary directory)"}
else
	WORK=${WORK:-$(mktemp -d -t epaxosd-matrix.XXXXXX)}
	mkdir -p "$WORK/bin"
	WORK=$(cd "$WORK" && pwd)
fi
case $PROFILE in
full)
	RESULTS=${RESULTS:-$ROOT/bench/results/$(date -u +%Y%m%d-%H%M%S)}
	BENCHMARKS=${BENCHMARKS:-$ROOT/BENCHMARKS.md}
	PLOTS=${PLOTS:-$ROOT/docs/bench}
	;;
quick)
	RESULTS=${RESULTS:-$WORK/results}
	BENCHMARKS=${BENCHMARKS:-$RESULTS/BENCHMARKS.md}
	PLOTS=${PLOTS:-$RESULTS/plots}
	;;
smoke)
	RESULTS=${RESULTS:-$WORK/results}
	BENCHMARKS=${BENCHMARKS:-$WORK/BENCHMARKS.md}
	PLOTS=${PLOTS:-$WORK/plots}
	;;
esac
for p in $PARTS; do
	case $p in matrix | sweep | hotkey | thrifty) ;; *) echo "PARTS: unknown part $p (want matrix, sweep, hotkey, thrifty)" >&2; exit 2 ;; esac
done
# The cells of each part, and how many runs and system starts they make.
CELLS_RUNS=0
STARTS=0
secs() { # secs DURATION: Go duration (1m30s, 500ms) in seconds
	awk -v d="$1" 'BEGIN { s = 0; while (match(d, /^[0-9.]+(h|ms|m|s)/)) { t = substr(d, 1, RLENGTH); n = t + 0; u = t; sub(/^[0-9.]+/, "", u);
		if (u == "h") s += n * 3600; else if (u == "m") s += n * 60; else if (u == "s") s += n; else s += n / 1000; d = substr(d, RLENGTH + 1) }
		print s }'
}
EST=0
count() { # count RUNS DURATION STARTS
	CELLS_RUNS=$((CELLS_RUNS + $1))
	STARTS=$((STARTS + $3))
	EST=$(awk -v e="$EST" -v n="$1" -v d="$(secs "$2")" -v w="$(secs "$WARMUP")" -v s="$3" 'BEGIN { print e + n * (d + w + 0.7) + s * 3 }')
}
thrifty_cells() {
	local c n
	for c in $THRIFTY_CONFLICTS; do
		for n in $CLIENT_COUNTS; do printf 'kind=matrix conflict=%s value_size=16 clients=%s;' "$c" "$n"; done
	done
}
matrix_cells() { # matrix_cells VALUE_SIZE
	local c n
	for c in $CONFLICTS; do
		for n in $CLIENT_COUNTS; do
			printf 'kind=matrix conflict=%s value_size=%s clients=%s;' "$c" "$1" "$n"
		done
	done
}
sweep_cells() {
	local n
	if [ -n "$SWEEP_RATES" ]; then
		for n in $SWEEP_RATES; do printf 'kind=sweep conflict=0 value_size=16 rate=%s duration=%s;' "$n" "$SWEEP_DURATION"; done
	else
		for n in $SWEEP_CLIENTS; do printf 'kind=sweep conflict=0 value_size=16 clients=%s duration=%s;' "$n" "$SWEEP_DURATION"; done
	fi
}
HOTKEY_CELLS="kind=hotkey conflict=100 value_size=16 clients=$HOTKEY_CLIENTS duration=$HOTKEY_DURATION"
words() { wc -w <<<"$1" | tr -d ' '; } # words LIST: how many
CLUSTER_SYSTEMS=""
HAS_ECHO=0
for s in $MATRIX_SYSTEMS; do
	if [ "$s" = echo ]; then HAS_ECHO=1; else CLUSTER_SYSTEMS+="${CLUSTER_SYSTEMS:+ }$s"; fi
done
ncells=$(($(words "$CONFLICTS") * $(words "$CLIENT_COUNTS")))
for p in $PARTS; do
	case $p in
	matrix)
		nsys=$(words "$CLUSTER_SYSTEMS")
		nsets=$(($(words "$MATRIX_REPLICAS") * $(words "$VALUE_SIZES")))
		count $((nsets * nsys * ncells)) "$DURATION" $((nsets * nsys))
		[ "$HAS_ECHO" = 0 ] || count $(($(words "$VALUE_SIZES") * ncells)) "$DURATION" "$(words "$VALUE_SIZES")"
		;;
	sweep)
		nsys=$(words "$SWEEP_SYSTEMS")
		npts=$(words "${SWEEP_RATES:-$SWEEP_CLIENTS}")
		count $((nsys * npts)) "$SWEEP_DURATION" "$nsys"
		;;
	hotkey) count "$(words "$HOTKEY_SYSTEMS")" "$HOTKEY_DURATION" "$(words "$HOTKEY_SYSTEMS")" ;;
	thrifty)
		n=$(words "$MATRIX_REPLICAS")
		count $((n * $(words "$THRIFTY_CONFLICTS") * $(words "$CLIENT_COUNTS"))) "$DURATION" "$n"
		;;
	esac
done

ESTIMATE="$CELLS_RUNS runs, $STARTS system starts, about $(awk -v e="$EST" 'BEGIN { m = int(e / 60 + 0.5); if (m < 1) m = 1; printf "%d minute%s", m, m == 1 ? "" : "s" }')"

# part LABEL VAR=VALUE...: one bench/run.sh invocation (DRY_RUN: print it).
part() {
	local label=$1 rc=0
	shift
	if truthy "$DRY_RUN"; then
		printf '[%s]\n' "$label"
		printf '  %s\n' "$@"
		return
	fi
	echo "==> [$label]" >&2
	env "$@" WORK="$WORK" RESULTS="$RESULTS" BUILD=0 KEEP_DATA=0 PROGRESS="$PROGRESS" PORT_BASE="$PORT_BASE" \
		DURATION="$DURATION" WARMUP="$WARMUP" BENCH_ARGS="$BENCH_ARGS" \
		bash "$ROOT/bench/run.sh" >>"$RESULTS/summaries.txt" &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=""
	if [ "$rc" != 0 ]; then
		FAILURES+=("$label: bench/run.sh exited $rc (see matrix.log)")
		write_run_json ""
	fi
}

run_parts() {
	local p r vs
	for p in $PARTS; do
		case $p in
		matrix)
			for r in $MATRIX_REPLICAS; do
				for vs in $VALUE_SIZES; do
					[ -z "$CLUSTER_SYSTEMS" ] || part "matrix, $r replicas, $vs B" SYSTEMS="$CLUSTER_SYSTEMS" REPLICAS="$r" CELLS="$(matrix_cells "$vs")"
				done
			done
			if [ "$HAS_ECHO" = 1 ]; then
				for vs in $VALUE_SIZES; do
					part "matrix, echo, $vs B" SYSTEMS=echo REPLICAS=3 CELLS="$(matrix_cells "$vs")"
				done
			fi
			;;
		sweep) part "sweep" SYSTEMS="$SWEEP_SYSTEMS" REPLICAS=3 CELLS="$(sweep_cells)" ;;
		hotkey) part "hot key" SYSTEMS="$HOTKEY_SYSTEMS" REPLICAS=3 CELLS="$HOTKEY_CELLS" ;;
		thrifty)
			for r in $MATRIX_REPLICAS; do
				part "thrifty, $r replicas" SYSTEMS=epaxosd-thrifty REPLICAS="$r" CELLS="$(thrifty_cells)"
			done
			;;
		esac
	done
}

if truthy "$DRY_RUN"; then
	echo "$PROFILE benchmark: $ESTIMATE; each bench/run.sh invocation:"
	run_parts
	echo "results in $RESULTS; report $BENCHMARKS, plots in $PLOTS"
	exit 0
fi

if [ -e "$RESULTS/results.jsonl" ]; then
	echo "$RESULTS already holds results; give another RESULTS directory" >&2
	exit 2
fi
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
exec 2> >(tee -a "$RESULTS/matrix.log" >&2)

# run.json: how the results were made.
json_str() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/\\t}
	s=${s//$'\n'/\\n}
	printf '"%s"' "$s"
}
rel_to() { # rel_to DIR PATH: PATH relative to DIR when inside the repository
	case $(realpath -m "$2") in "$ROOT"/*) realpath -m --relative-to="$1" "$2" ;; *) realpath -m "$2" ;; esac
}
COMMAND="${GIVEN[*]}${GIVEN[*]:+ }bash bench/matrix.sh"
REPORT_ARGS=(-results "$(rel_to "$ROOT/bench/report" "$RESULTS")" -out "$(rel_to "$ROOT/bench/report" "$BENCHMARKS")" -plots "$(rel_to "$ROOT/bench/report" "$PLOTS")")
[ -z "${WAN:-}" ] || REPORT_ARGS+=(-wan "$(rel_to "$ROOT/bench/report" "$WAN")")
# The written analysis (targets, profile) goes into the full report only.
[ "$PROFILE" != full ] || [ ! -f "$ROOT/bench/analysis.md" ] || REPORT_ARGS+=(-notes ../analysis.md)
[ "$PROFILE" = smoke ] && REPORT_ARGS+=(-require-ok)
REPORT_COMMAND="cd bench/report && go run . ${REPORT_ARGS[*]}"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
FAILURES=()
write_run_json() { # write_run_json FINISHED
	local v first=1 f
	{
		printf '{"command":%s,"report_command":%s' "$(json_str "$COMMAND")" "$(json_str "$REPORT_COMMAND")"
		printf ',"started":%s,"finished":%s' "$(json_str "$STARTED")" "$(json_str "$1")"
		printf ',"commit":%s,"dirty":%s' "$(json_str "$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || true)")" \
			"$([ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null || true)" ] && echo true || echo false)"
		printf ',"machine":{"cores":%d,"cpu_model":%s' "$(nproc)" "$(json_str "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)")"
		printf ',"memory":%s' "$(json_str "$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)")"
		# shellcheck disable=SC1091 # the OS's own file
		printf ',"kernel":%s,"os":%s' "$(json_str "$(uname -r)")" "$(json_str "$( (. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}") || uname -s)")"
		printf ',"go":%s},"settings":{' "$(json_str "$(go version)")"
		for v in "${SETTING_NAMES[@]}"; do
			[ "$first" = 1 ] || printf ','
			first=0
			printf '%s:%s' "$(json_str "$v")" "$(json_str "${!v:-}")"
		done
		printf '},"failures":['
		first=1
		for f in "${FAILURES[@]}"; do
			[ "$first" = 1 ] || printf ','
			first=0
			printf '%s' "$(json_str "$f")"
		done
		printf ']}\n'
	} >"$RESULTS/run.json"
}
write_run_json ""

CHILD=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	if [ -n "$CHILD" ]; then
		kill -TERM "$CHILD" 2>/dev/null || true
		wait "$CHILD" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> $PROFILE benchmark: $ESTIMATE" >&2
echo "==> results in $RESULTS, work directory $WORK" >&2
echo "==> building into $WORK/bin" >&2
(cd "$ROOT" && go build -o "$WORK/bin/epaxosd" ./cmd/epaxosd)
(cd "$ROOT/bench/raftkv" && go build -o "$WORK/bin/raftkv" ./cmd/raftkv && go build -o "$WORK/bin/echo" ./cmd/echo)
if truthy "$REPORT"; then
	(cd "$ROOT/bench/report" && go build -o "$WORK/bin/report" .) # fail now rather than after the runs
fi

run_parts
write_run_json "$(date -u +%Y-%m-%dT%H:%M:%SZ)"

rc=0
if truthy "$REPORT"; then
	echo "==> $REPORT_COMMAND" >&2
	(cd "$ROOT/bench/report" && "$WORK/bin/report" "${REPORT_ARGS[@]}") >&2 || rc=1
fi
if [ ${#FAILURES[@]} -gt 0 ]; then
	echo "==> failed:" >&2
	printf '  %s\n' "${FAILURES[@]}" >&2
	rc=1
fi
if truthy "$REPORT"; then echo "==> results in $RESULTS; report $BENCHMARKS" >&2; else echo "==> results in $RESULTS" >&2; fi
if [ "$PROFILE" = smoke ] && [ "$rc" = 0 ] && ! truthy "${KEEP_WORK:-}"; then
	rm -rf "$WORK"
	echo "==> smoke run passed; removed $WORK (KEEP_WORK=1 keeps it)" >&2
fi
exit "$rc"
