#!/usr/bin/env bash
# The figures of docs/scale-out.md: one consumer group of 1, 2 and 3
# instances (one worker each) reading a 6-partition topic of RECORDS
# `key,value` records into PostgreSQL, against the same records read by
# one instance with a fixed assignment and no output (the baseline), in
# ROUNDS interleaved rounds. Wall time from the first start to the last
# exit; CPU of the instances, of the broker and of PostgreSQL from
# /proc. Needs a broker at $BROKERS and a PostgreSQL server at $URL
# (see docs/scale-out.md), and the release binary.
#
#   BROKERS=127.0.0.1:19092 URL=postgresql://microbatch@127.0.0.1:55432/postgres \
#     bash docs/scale-out/measure.sh
set -euo pipefail
BIN=${BIN:-target/release/microbatch}
RECORDS=${RECORDS:-2000000}
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d)
TOPIC=scale$$
python3 -c "
import random
random.seed(7)
with open('$WORK/in.csv','w') as f:
    for i in range($RECORDS):
        f.write(f'{random.randrange(100000)},{random.randrange(1000)}\n')"
"$BIN" kafka produce --from "$WORK/in.csv" --brokers "$BROKERS" --topic "$TOPIC" --partitions 6 >/dev/null

profile() { # profile NAME OUTPUT-KIND
    cat > "$WORK/$1.toml" <<TOML
[engine]
workers = 1
pin = false
interval = "100ms"
[workload]
source = "kafka"
brokers = "$BROKERS"
topic = "$TOPIC"
group = "$1"
stop_at_end = true
[run]
warmup = "0s"
duration = "10m"
[job]
kind = "keyed"
reductions = ["count", "sum"]
[output]
kind = "$2"
TOML
    if [ "$2" = postgres ]; then
        printf 'url = "%s"\ntable = "%s"\n' "$URL" "$1" >> "$WORK/$1.toml"
    fi
}

ticks() { # CPU ticks of the processes whose command line matches $1
    local total=0
    for pid in $(pgrep -f "$1" || true); do
        local stat
        stat=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null || echo "0 0")
        total=$((total + ${stat% *} + ${stat#* }))
    done
    echo $total
}

HZ=$(getconf CLK_TCK)
echo "what,round,instances,seconds,records_per_s,instance_cpu_ns_per_record,broker_cpu_ns_per_record,postgres_cpu_ns_per_record"
for round in $(seq 1 "$ROUNDS"); do
    for case in fixed 1 2 3; do
        name="r${round}_$case"
        if [ "$case" = fixed ]; then profile "$name" none; n=1; else profile "$name" postgres; n=$case; fi
        broker0=$(ticks "tansu broker"); pg0=$(ticks "postgres")
        start=$(date +%s.%N)
        for i in $(seq 1 "$n"); do
            /usr/bin/time -f "%U %S" -o "$WORK/$name.$i.time" "$BIN" run "$WORK/$name.toml" >"$WORK/$name.$i.out" 2>&1 &
        done
        wait
        end=$(date +%s.%N)
        broker1=$(ticks "tansu broker"); pg1=$(ticks "postgres")
        cpu=$(cat "$WORK/$name".*.time | awk '{s += $1 + $2} END {print s}')
        python3 -c "
s = $end - $start; r = $RECORDS
print(f'{\"fixed, output none\" if \"$case\" == \"fixed\" else \"group into postgres\"},$round,$n,{s:.2f},{r / s:.0f},{$cpu * 1e9 / r:.0f},{($broker1 - $broker0) / $HZ * 1e9 / r:.0f},{($pg1 - $pg0) / $HZ * 1e9 / r:.0f}')"
    done
done
rm -rf "$WORK"
