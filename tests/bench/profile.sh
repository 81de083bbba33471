#!/bin/sh
# Profiles `luari run` (or, with SIDE=sim, `luari sim-server`) while the
# simulator places CALLS calls at RATE a second into FLOW (play or park;
# park calls are released with a key once all are in). Not part of make test.
#
#   tests/bench/profile.sh [CALLS [RATE [FLOW]]]     (from the project root)
#   TOOL=perf (default)  perf record -g at the rate asked (default 1,000 a
#                        second, the benchmark's): CPU by library (the
#                        kernel's share included) and the top symbols
#   TOOL=callgrind       instructions per call and the top functions; start-up
#                        is left out. luari runs some 50 times slower under
#                        valgrind, so the default rate is 30 a second: at
#                        100 it falls behind, requests queue up, and curl
#                        sets up a connection for each several times over,
#                        which is not what happens at full speed. The script
#                        says so when the simulator saw answers come late.
#
# RUN_ARGS are added to `luari run` (RUN_ARGS="--rest websocket" profiles
# requests sent over the events WebSocket).
#
# The full profile stays in $OUT (default /tmp/luari-profile): perf.data for
# perf report, callgrind.out* for callgrind_annotate. libcurl, libluajit and
# libwslay come without symbols from Debian: their costs show as addresses,
# totalled per library by the first table.
set -eu
TOOL=${TOOL:-perf}
case $TOOL in
perf) default_rate=1000 ;;
callgrind) default_rate=30 ;;
*) echo "profile.sh: TOOL must be perf or callgrind" >&2; exit 2 ;;
esac
CALLS=${1:-1000}
RATE=${2:-$default_rate}
FLOW=${3:-play}
BIN=${BIN:-build/luari}
SIDE=${SIDE:-luari}
OUT=${OUT:-/tmp/luari-profile}
rm -rf "$OUT"
mkdir -p "$OUT"
export ARI_PASSWORD=asterisk

# Starts the profiled side (under valgrind for callgrind; perf attaches to
# it later). Run in the background: exec, so that $! is that process itself.
profiled() {
  if [ "$TOOL" = callgrind ]; then
    exec valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "$@"
  else
    exec "$@"
  fi
}

sim_cmd="$BIN sim-server --listen 127.0.0.1:0 --port-file $OUT/port --user asterisk --log-level warn"
run_cmd="$BIN run --user asterisk --log-level info --no-watch ${RUN_ARGS:-}"
if [ "$SIDE" = sim ]; then
  profiled $sim_cmd > "$OUT/sim.log" 2>&1 &
else
  $sim_cmd > "$OUT/sim.log" 2>&1 &
fi
sim=$!
while [ ! -s "$OUT/port" ]; do sleep 0.1; done
port=$(cat "$OUT/port")
url=http://127.0.0.1:$port
if [ "$SIDE" = sim ]; then
  $run_cmd --url "$url/ari" tests/bench/flows > "$OUT/run.log" 2>&1 &
  run=$!
  target=$sim
else
  profiled $run_cmd --url "$url/ari" tests/bench/flows > "$OUT/run.log" 2>&1 &
  run=$!
  target=$run
fi
until grep -q "connected to Asterisk" "$OUT/run.log"; do sleep 0.2; done
sleep 1

stat() { curl -s -u asterisk:asterisk "$url/sim/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
if [ "$TOOL" = callgrind ]; then
  callgrind_control -z > /dev/null
else
  perf record -F 4999 -g -p "$target" -o "$OUT/perf.data" > "$OUT/perf.log" 2>&1 &
  perf=$!
  sleep 0.5
fi
curl -s -u asterisk:asterisk -X DELETE "$url/sim/stats"
curl -s -u asterisk:asterisk -X POST "$url/sim/load" -H 'Content-Type: application/json' \
  -d "{\"rate\":$RATE,\"count\":$CALLS,\"args\":[\"$FLOW\"]}" > /dev/null
if [ "$FLOW" = park ]; then
  until [ "$(stat answered)" -ge "$CALLS" ]; do sleep 0.5; done
  sleep 2
  curl -s -u asterisk:asterisk -X POST "$url/sim/load/dtmf" -H 'Content-Type: application/json' \
    -d "{\"digits\":\"1\",\"rate\":$RATE}" > /dev/null
fi
until [ "$(stat ended)" -ge "$CALLS" ]; do sleep 0.5; done
sleep 0.5
p99=$(curl -s -u asterisk:asterisk "$url/sim/stats" \
  | luajit -e 'local s = require("cjson").decode(io.read("*a")); print(string.format("%.2f", s.answer_latency.p99_ms or 0))')
if [ "$TOOL" = callgrind ]; then
  callgrind_control -d > /dev/null
  sleep 1
else
  kill -INT "$perf"
  wait "$perf" 2> /dev/null || true
fi
kill "$run" "$sim"
wait 2> /dev/null || true

echo "$SIDE under $TOOL: $CALLS calls ($FLOW) at $RATE/s; answer p99 ${p99:-?} ms as the simulator saw it"
if [ "$TOOL" = callgrind ]; then
  if [ -n "$p99" ] && awk "BEGIN { exit !($p99 > 200) }"; then
    echo "warning: answers came late (p99 over 200 ms): $SIDE fell behind under valgrind;" \
      "the profile is not that of full speed (lower RATE)"
  fi
  profile=$(ls "$OUT"/callgrind.out* | tail -1)
  total=$(callgrind_annotate "$profile" 2> /dev/null | sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
  echo "$total instructions, $((total / CALLS)) per call"
  callgrind_annotate --inclusive=no "$profile" 2> /dev/null | sed -n '/^Ir/,$p' | head -40
else
  echo "CPU samples by library:"
  perf report -i "$OUT/perf.data" --no-children --sort dso -g none --stdio 2> /dev/null \
    | grep -v '^#' | grep -v '^$' | head -12
  echo "top symbols:"
  perf report -i "$OUT/perf.data" --no-children --sort dso,sym -g none --stdio 2> /dev/null \
    | grep -v '^#' | grep -v '^$' | head -25
fi
