#!/bin/sh
# Profiles `luari run` (or, with SIDE=sim, `luari sim-server`) under
# valgrind's callgrind while the simulator places CALLS calls at RATE a
# second into FLOW (play or park; park calls are released with a key once
# all are in). Counters are zeroed once luari is connected and dumped once
# every call has ended, so start-up is left out. Not part of make test.
#
#   tests/bench/profile.sh [CALLS [RATE [FLOW]]]     (from the project root)
#
# Prints instructions per call and the top functions; the full profile
# stays in $OUT (default /tmp/luari-profile) for callgrind_annotate.
set -eu
CALLS=${1:-1000}
RATE=${2:-100}
FLOW=${3:-play}
BIN=${BIN:-build/luari}
SIDE=${SIDE:-luari}
OUT=${OUT:-/tmp/luari-profile}
rm -rf "$OUT"
mkdir -p "$OUT"
export ARI_PASSWORD=asterisk

sim_cmd="$BIN sim-server --listen 127.0.0.1:0 --port-file $OUT/port --user asterisk --log-level warn"
if [ "$SIDE" = sim ]; then
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" $sim_cmd > "$OUT/sim.log" 2>&1 &
else
  $sim_cmd > "$OUT/sim.log" 2>&1 &
fi
sim=$!
while [ ! -s "$OUT/port" ]; do sleep 0.1; done
port=$(cat "$OUT/port")
url=http://127.0.0.1:$port
if [ "$SIDE" = sim ]; then
  $BIN run --url "$url/ari" --user asterisk --log-level info --no-watch tests/bench/flows > "$OUT/run.log" 2>&1 &
else
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
    $BIN run --url "$url/ari" --user asterisk --log-level info --no-watch tests/bench/flows > "$OUT/run.log" 2>&1 &
fi
run=$!
until grep -q "connected to Asterisk" "$OUT/run.log"; do sleep 0.2; done
sleep 1
stat() { curl -s -u asterisk:asterisk "$url/sim/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
callgrind_control -z > /dev/null
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
callgrind_control -d > /dev/null
sleep 1
kill "$run" "$sim"
wait 2> /dev/null || true
curl_stats=$(ls "$OUT"/callgrind.out* | tail -1)
total=$(callgrind_annotate "$curl_stats" 2> /dev/null | sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "$SIDE: $CALLS calls ($FLOW) at $RATE/s: $total instructions, $((total / CALLS)) per call"
callgrind_annotate --inclusive=no "$curl_stats" 2> /dev/null | sed -n '/^Ir/,$p' | head -40
