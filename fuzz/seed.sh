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

# proxy_protocol seeds: a mode byte (its value mod 3: 0 v1, 1 v2, 2
# either; bit 4: rewrite the v2 length to cover the rest) then the bytes a
# load balancer sends first. sig is the v2 signature, \r\n\r\n\0\r\nQUIT\n.
pp="$here/corpus/proxy_protocol"
mkdir -p "$pp"
sig='\015\012\015\012\000\015\012QUIT\012'
printf '\002PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n\r\n' > "$pp/seed-v1-tcp4"
printf '\000PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 65535\r\n' > "$pp/seed-v1-tcp6"
printf '\002PROXY UNKNOWN\r\n' > "$pp/seed-v1-unknown"
# TCP over IPv4: 192.0.2.1:51000 -> 10.0.0.1:443, then a request.
printf "\001$sig"'\041\021\000\014\300\000\002\001\012\000\000\001\307\070\001\273GET /' > "$pp/seed-v2-tcp4"
# TCP over IPv6: ::1:1 -> ::2:2, then an ALPN TLV "h2" (36 + 5 bytes).
printf "\005$sig"'\041\041\000\051' > "$pp/seed-v2-tcp6-tlv"
printf '\000%.0s' 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 >> "$pp/seed-v2-tcp6-tlv"
printf '\001' >> "$pp/seed-v2-tcp6-tlv"
printf '\000%.0s' 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 >> "$pp/seed-v2-tcp6-tlv"
printf '\002\000\001\000\002\001\000\002h2' >> "$pp/seed-v2-tcp6-tlv"
# LOCAL (a health check), and UNIX stream with its 216-byte block.
printf "\002$sig"'\040\000\000\000' > "$pp/seed-v2-local"
{ printf "\001$sig"'\041\061\000\330'; head -c 216 /dev/zero; } > "$pp/seed-v2-unix"
echo "seeded $(ls "$pp" | wc -l) files into $pp"
