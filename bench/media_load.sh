#!/usr/bin/env bash
# Media load on the built binary (issue 15, BENCHMARKS.md "Media load"): a
# ccpbx on 127.0.0.1 with a copy of config.toml (free ports, warn log level,
# per-address, session and overload limits off so only media is measured) and
# bench/sipload placing N trunk calls to queue 3000 at RATE/s.
#   moh:    no agent; the callers wait on music and echo it (sipp's -rtp_echo).
#   bridge: N agents 2001… registered (digest) and Available; each call is
#           offered to one, which answers and sends a 20 ms PCMU stream; the
#           caller echoes it, so audio crosses the relay both ways.
# Once all calls are up (+3 s) sipload measures for MEASURE seconds: ccpbx's
# CPU (/proc/PID/stat), its own CPU, and per stream the spacing of the packets
# it receives (kernel receive timestamps): p50/p99 of |delta - 20 ms|.
#
# Usage: bench/media_load.sh [-m moh|bridge] [-n N] [-r RATE] [-w MEASURE]
#          [-b BINARY] [-c CONFIG] [-p DIR] [-k]
#   -b  the ccpbx binary (default: built from this tree); -c its config.toml
#   -p  save a 10 s CPU profile (and a goroutine count) of ccpbx taken in the
#       window to DIR (turns on [http] pprof on loopback)
#   -k  keep the temporary directory
# Bounded: sipload stops itself (every transaction times out at 32 s) and the
# script kills the ccpbx it started on exit.
set -euo pipefail

MODE=moh N=1000 RATE=100 MEASURE=15 BIN="" CFGSRC="" PROF="" KEEP=0
while getopts "m:n:r:w:b:c:p:k" o; do
	case $o in
	m) MODE=$OPTARG ;;
	n) N=$OPTARG ;;
	r) RATE=$OPTARG ;;
	w) MEASURE=$OPTARG ;;
	b) BIN=$OPTARG ;;
	c) CFGSRC=$OPTARG ;;
	p) PROF=$OPTARG ;;
	k) KEEP=1 ;;
	*) sed -n '2,21p' "$0"; exit 2 ;;
	esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
TMP=$(mktemp -d /tmp/ccpbx-media.XXXXXX)
PBX=""
cleanup() {
	if [ -n "$PBX" ]; then kill "$PBX" 2>/dev/null || true; wait "$PBX" 2>/dev/null || true; fi
	if [ "$KEEP" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

if [ -z "$BIN" ]; then
	(cd "$ROOT" && go build -o "$TMP/ccpbx" ./cmd/ccpbx)
	BIN=$TMP/ccpbx
fi
(cd "$ROOT" && go build -o "$TMP/sipload" ./bench/sipload)

read -r INT TRUNK ESL HTTP < <(free_ports 4)

CFG=$TMP/config.toml
sed -e 's/^listen_ip = "0.0.0.0"/listen_ip = "127.0.0.1"\nadvertise_ip = "127.0.0.1"/' \
	-e "s/^port = 5060$/port = $INT/" -e "s/^port = 5080$/port = $TRUNK/" \
	-e "s/^listen = \"127.0.0.1:8021\"/listen = \"127.0.0.1:$ESL\"/" \
	-e "s|^data_dir = \"data\"|data_dir = \"$TMP/data\"|" \
	-e 's/^log_level = "info"/log_level = "warn"/' \
	-e 's/^max_sessions = .*/max_sessions = 0/' -e 's/^sessions_per_second = .*/sessions_per_second = 0/' \
	-e 's/^overload_delay = .*/overload_delay = "0s"/' \
	-e 's/^calls_per_second_per_ip = .*/calls_per_second_per_ip = 0/' -e 's/^max_calls_per_ip = .*/max_calls_per_ip = 0/' \
	-e "s|^# \[http\]|[http]\nlisten = \"127.0.0.1:$HTTP\"\npprof = true|" \
	"${CFGSRC:-$ROOT/config.toml}" >"$CFG"
AGENTS=0
if [ "$MODE" = bridge ]; then
	AGENTS=$N
	for i in $(seq 1 "$N"); do
		id=$((2000 + i))
		printf '\n[[directory.user]]\nid = "%s"\n[directory.user.params]\npassword = "1234"\n[directory.user.variables]\nuser_context = "default"\n' "$id"
		printf '\n[[callcenter.agent]]\nname = "%s"\ntype = "callback"\ncontact = "[call_timeout=60]user/%s"\nstatus = "Available"\nmax-no-answer = 3\nwrap-up-time = 0\n' "$id" "$id"
		printf '\n[[callcenter.tier]]\nagent = "%s"\nqueue = "3000@default"\nlevel = 1\nposition = 1\n' "$id"
	done >>"$CFG"
elif [ "$MODE" != moh ]; then
	echo "mode: moh or bridge" >&2
	exit 2
fi

(cd "$ROOT" && exec "$BIN" serve -config "$CFG") >"$TMP/ccpbx.log" 2>&1 &
PBX=$!
for _ in $(seq 100); do
	"$BIN" cli -config "$CFG" -x status >/dev/null 2>&1 && break
	sleep 0.1
done
"$BIN" cli -config "$CFG" -x status >/dev/null

RAMP=$(python3 -c "import math; print(math.ceil($N/$RATE))")
HOLD=$((RAMP + 3 + MEASURE + 3))
if [ -n "$PROF" ]; then
	mkdir -p "$PROF"
	(sleep $((RAMP + 3 + (AGENTS + RATE - 1) / RATE + 2)) && curl -s "http://127.0.0.1:$HTTP/debug/pprof/profile?seconds=10" >"$PROF/cpu.pprof" &&
		curl -s "http://127.0.0.1:$HTTP/debug/pprof/goroutine?debug=1" | head -1 >"$PROF/goroutines.txt") &
	PROF_JOB=$!
fi
echo "== $MODE: $N calls at $RATE/s ($AGENTS agents), held ${HOLD}s, window ${MEASURE}s; $(nproc) cores"
"$TMP/sipload" -mode invite -media -calls "$N" -agents "$AGENTS" -target "127.0.0.1:$TRUNK" -rate "$RATE" -duration "${RAMP}s" \
	-hold "${HOLD}s" -measure "${MEASURE}s" -pid "$PBX" -register-target "127.0.0.1:$INT"
echo "ccpbx: peak_rss=$(awk '/VmHWM/{print $2, $3}' /proc/$PBX/status) log_lines=$(wc -l <"$TMP/ccpbx.log")"
if [ -n "$PROF" ]; then wait "$PROF_JOB" || true; fi
