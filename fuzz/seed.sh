#!/bin/sh
# Copies tests/corpus/h1/*.http into fuzz/corpus/h1_server as seeds for the
# h1_server target. Each seed gets a leading 0 byte: "no control ops", so the
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
