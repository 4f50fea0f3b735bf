#!/usr/bin/env bash
# Memory per caller waiting on music (issue 15): the built ccpbx on
# 127.0.0.1 with a copy of the shipped config.toml, no agent logged in,
# sipp trunk callers to 3000 (music, then the queue's timeout) up to N at
# once for each N given. It reports RSS at 0 callers, RSS with N waiting,
# (RSS(N) - RSS(0)) / N, the Go heap in use (from /debug/pprof, which the
# copy enables), and RSS every 10 s for IDLE seconds (at most 60) once the
# callers are gone, and CPU and RSS over 10 s with the N waiting once the
# ramp is over. Each N runs in a fresh ccpbx. The copy lifts the
# shipped limits on calls up and calls per second (max_sessions, the
# trunk's per-address caps) and turns overload shedding off (on a shared
# machine a busy neighbour's scheduling delay would refuse the load with
# 503): this measures memory, not admission.
# With -p DIR it saves a heap and a goroutine profile per N in DIR, and a
# heap profile (after a GC) at the end of the idle time.
#
# With -b BIN it runs that ccpbx binary instead of building this tree
# (to measure a before and an after back to back).
#
# Usage: bench/moh_mem.sh [-i IDLE_SECONDS] [-p DIR] [-b BIN] N...   (default N: 500 1000)
#
# Needs go, sipp, curl and python3. Bounded: every sipp has -timeout, the
# script stops what it started on exit.
set -euo pipefail
IDLE=60 PROF="" BIN=""
while getopts "i:p:b:" o; do
	case $o in
	i) IDLE=$OPTARG ;;
	p) PROF=$OPTARG ;;
	b) BIN=$(realpath "$OPTARG") ;;
	*) sed -n '2,21p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
NS=("$@")
[ ${#NS[@]} -gt 0 ] || NS=(500 1000)

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
TMP=$(mktemp -d /tmp/ccpbx-mohmem.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT

if [ -n "$BIN" ]; then
	cp "$BIN" "$TMP/ccpbx"
else
	(cd "$ROOT" && go build -o "$TMP/ccpbx" ./cmd/ccpbx)
fi
read -r INT TRUNK ESL HTTP CALLER_SIP CALLER_MEDIA < <(free_ports 6)
CFG=$TMP/config.toml
sed -e 's/^listen_ip = "0.0.0.0"/listen_ip = "127.0.0.1"\nadvertise_ip = "127.0.0.1"/' \
	-e "s/^port = 5060$/port = $INT/" -e "s/^port = 5080$/port = $TRUNK/" \
	-e "s/^listen = \"127.0.0.1:8021\"/listen = \"127.0.0.1:$ESL\"/" \
	-e "s|^data_dir = \"data\"|data_dir = \"$TMP/data\"|" \
	-e "s|^# \[http\]|[http]\nlisten = \"127.0.0.1:$HTTP\"\npprof = true|" \
	-e "s/^max_sessions = .*/max_sessions = 100000/" -e "s/^sessions_per_second = .*/sessions_per_second = 1000/" \
	-e 's/^overload_delay = .*/overload_delay = "0s"/' \
	-e "s/^calls_per_second_per_ip = 30$/calls_per_second_per_ip = 1000/" -e "s/^max_calls_per_ip = 500$/max_calls_per_ip = 100000/" \
	"$ROOT/config.toml" >"$CFG"
PBX=""
start_pbx() {
	(cd "$TMP" && exec ./ccpbx serve -config "$CFG") >>"$TMP/ccpbx.log" 2>&1 &
	PBX=$!
	PIDS+=("$PBX")
	for _ in $(seq 100); do cli status >/dev/null 2>&1 && break; sleep 0.1; done
	cli status >/dev/null
	sleep 3
}
cli() { "$TMP/ccpbx" cli -config "$CFG" -x "$1"; }
CLK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PBX/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$PBX/status"; }
calls() { cli "show calls count" 2>/dev/null | grep -o '^[0-9]*' | head -1 || echo 0; }
heap_inuse() { curl -s "http://127.0.0.1:$HTTP/debug/pprof/heap?debug=1" | sed -n 's/^# HeapInuse = //p'; }
stack_inuse() { curl -s "http://127.0.0.1:$HTTP/debug/pprof/heap?debug=1" | sed -n 's/^# Stack = \([0-9]*\) .*/\1/p'; }
goroutines() { curl -s "http://127.0.0.1:$HTTP/debug/pprof/goroutine?debug=1" | sed -n '1s/.*total \([0-9]*\).*/\1/p'; }
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for N in "${NS[@]}"; do
	# A fresh process per N: memory a previous N left with the runtime
	# would hide part of this one's.
	start_pbx
	R0=$(rss_kb)
	echo "RSS(0) $((R0 / 1024)) MB, heap in use $(($(heap_inuse) / 1024)) KB, goroutines $(goroutines)"
	HOLD=$((N / 50 + 30)) # ramp at 100/s, then ~15 s up with all N
	sipp -sf "$ROOT/bench/sipp/trunk_load.xml" -s 3000 -i 127.0.0.1 -p "$CALLER_SIP" -mi 127.0.0.1 -mp "$CALLER_MEDIA" -rtp_echo \
		-r 100 -l "$N" -m "$N" -d $((HOLD * 1000)) -timeout $((HOLD + 60))s -nostdin \
		127.0.0.1:"$TRUNK" >"$TMP/callers.out" 2>&1 &
	S=$!
	PIDS+=("$S")
	for _ in $(seq $((HOLD * 2))); do [ "$(calls)" -ge "$N" ] && break; sleep 0.5; done
	sleep 5
	up=$(calls) R=$(rss_kb) H=$(heap_inuse) G=$(goroutines) ST=$(stack_inuse)
	echo "N=$N up=$up RSS $((R / 1024)) MB, per caller $(((R - R0) / N)) KB; heap in use $((H / 1024 / 1024)) MB ($(((H) / N / 1024)) KB per caller); goroutines $G; stacks $((ST / 1024 / 1024)) MB ($((ST / N / 1024)) KB per caller)"
	if [ -n "$PROF" ]; then
		mkdir -p "$PROF"
		curl -s "http://127.0.0.1:$HTTP/debug/pprof/heap" >"$PROF/heap-$N.pb.gz"
		curl -s "http://127.0.0.1:$HTTP/debug/pprof/goroutine?debug=1" >"$PROF/goroutine-$N.txt"
	fi
	# CPU and RSS over the next 10 s, all N still waiting: what a waiting
	# caller costs once the ramp is over (and the GC policy has settled).
	C0=$(cpu_ticks)
	sleep 10
	C1=$(cpu_ticks) R2=$(rss_kb)
	ST=$(stack_inuse)
	echo "   +10 s: CPU $(((C1 - C0) * 100 / CLK / 10)) % of one core, RSS $((R2 / 1024)) MB, per caller $(((R2 - R0) / N)) KB, calls up $(calls), stacks $((ST / N / 1024)) KB per caller"
	wait "$S" || echo "sipp exit $?"
	for _ in $(seq 60); do [ "$(calls)" -eq 0 ] && break; sleep 0.5; done
	echo "   after: calls $(calls), RSS $(($(rss_kb) / 1024)) MB"
	for t in 10 20 30 40 50 60; do
		[ "$t" -le "$IDLE" ] || break
		sleep 10
		echo "   idle ${t}s: RSS $(($(rss_kb) / 1024)) MB (RSS(0) $((R0 / 1024)) MB), heap in use $(($(heap_inuse) / 1024 / 1024)) MB, goroutines $(goroutines)"
	done
	if [ -n "$PROF" ]; then
		curl -s "http://127.0.0.1:$HTTP/debug/pprof/heap?gc=1" >"$PROF/heap-idle-$N.pb.gz"
	fi
	kill "$PBX"
	wait "$PBX" 2>/dev/null || true
done
