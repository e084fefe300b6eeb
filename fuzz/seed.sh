#!/bin/sh
# Copies tests/corpus/h1/*.http into fuzz/corpus/h1_server as seeds for the
# h1_server target, and writes a few WebSocket seeds for ws_frame. Each h1
# seed gets a leading 0 byte: "no control ops", so the
# target feeds the request whole and answers it like a well-behaved driver.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/corpus/h1_server"
mkdir -p "$out"
for f in "$here"/../tests/corpus/h1/*.http; do
    name=$(basename "$f" .http)
    { printf '\000'; cat "$f"; } > "$out/seed-$name"
done
echo "seeded $(ls "$out" | wc -l) files into $out"

# server_conn seeds: every HTTP/1.1 and WebSocket corpus case, with no
# control ops (the target then answers, upgrades and lets timers run).
sc="$here/corpus/server_conn"
mkdir -p "$sc"
for f in "$here"/../tests/corpus/h1/*.http "$here"/../tests/corpus/ws/*.http; do
    name=$(basename "$(dirname "$f")")-$(basename "$f" .http)
    { printf '\000'; cat "$f"; } > "$sc/seed-$name"
done
echo "seeded $(ls "$sc" | wc -l) files into $sc"

# ws_frame seeds: a 0 byte ("no control ops") then client frames. The
# masking key 00 00 00 00 is valid and leaves payloads readable.
ws="$here/corpus/ws_frame"
mkdir -p "$ws"
m='\200'  # mask bit, or-ed with the 7-bit length below
printf '\000\201\205\0\0\0\0Hello' > "$ws/seed-text"
printf '\000\001\203\0\0\0\0Hel\211\201\0\0\0\0p\200\202\0\0\0\0lo' > "$ws/seed-fragments"
printf '\000\210\205\0\0\0\0\003\350bye' > "$ws/seed-close"
printf '\000\001\212\0\0\0\0\316\272\341\275\271\317\203\316\274\316\265\200\204\0\0\0\0\364\220\200\200' > "$ws/seed-utf8"
# Control bytes 0 (default limits) and 1 (permessage-deflate on), then the
# RFC 7692 section 7.2.3.2 messages: "Hello" twice, the second one
# referencing the first.
printf '\002\000\001\301\207\0\0\0\0\362\110\315\311\311\007\000\301\205\0\0\0\0\362\000\021\000\000' > "$ws/seed-deflate"
echo "seeded $(ls "$ws" | wc -l) files into $ws"
