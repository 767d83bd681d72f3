#!/usr/bin/env bash
# Regenerate the CoAP fixtures from real CoAP stacks on loopback (run as root).
#
#   libcoap.pcap      libcoap 4.3.1 coap-client/coap-server (Debian libcoap3-bin) on UDP 5683:
#                     GET/PUT/POST/DELETE, discovery, Block2/Block1, Observe, NON, 4.04, IPv6
#   libcoap_5685.pcap the same server on a non-default port (heuristic / decode-as)
#   oscore_aiocoap.pcap + oscore_ctx/  aiocoap OSCORE client and server (make_oscore.py);
#                     oscore_values.json records the kid / Partial IV / kid context that
#                     aiocoap used for every message, taken from its context objects.
# The tests compare against these files; re-running changes MIDs, tokens and times, which the
# tests read from the captures themselves (and from tshark), never hard-code.
set -euo pipefail
cd "$(dirname "$0")"
CLIENT=${COAP_CLIENT:-coap-client-notls}
SERVER=${COAP_SERVER:-coap-server-notls}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

capture() {  # capture FILE FILTER -- starts a bounded tcpdump, prints its pid
    timeout 60 tcpdump -U -i lo -s 0 -w "$1" "$2" >/dev/null 2>&1 &
    echo $!
}

# --- libcoap on 5683 -------------------------------------------------------
TD=$(capture libcoap.pcap "udp port 5683"); PIDS+=("$TD")
sleep 1.5
"$SERVER" -p 5683 -d 4 >/dev/null 2>&1 & SRV=$!; PIDS+=("$SRV")
sleep 0.5
C="timeout 20 $CLIENT -B 5"
$C -m get coap://127.0.0.1/.well-known/core >/dev/null
$C -m get coap://127.0.0.1/ >/dev/null
$C -m get -T cafe coap://127.0.0.1/time >/dev/null
$C -m put -e "hello jpdissect" -t 0 coap://127.0.0.1/example_data >/dev/null
$C -m get -A 0 coap://127.0.0.1/example_data >/dev/null
$C -m post -e '{"a":1}' -t 50 coap://127.0.0.1/example_data >/dev/null || true
$C -m put -e "$(printf 'block1-%03d ' $(seq 1 30))" -b 32 coap://127.0.0.1/example_data >/dev/null
$C -m get -b 64 coap://127.0.0.1/.well-known/core >/dev/null
$C -N -m get coap://127.0.0.1/time >/dev/null
$C -m get coap://127.0.0.1/no/such/resource >/dev/null || true
$C -m delete coap://127.0.0.1/dyn1 >/dev/null || true
$C -m put -e dynamic coap://127.0.0.1/dyn1 >/dev/null || true
$C -m get -O 65000,0x0102 -O 2050,x coap://127.0.0.1/dyn1 >/dev/null || true
$C -m get "coap://127.0.0.1/example_data?q=1&r=two" >/dev/null
$C -m get 'coap://[::1]/time' >/dev/null
# CBOR body (RFC 8949 Appendix A: {"a": 1, "b": [2, 3]}), Content-Format 60
$C -m put -t 60 -e '%A2%61a%01%61b%82%02%03' coap://127.0.0.1/example_data >/dev/null
$C -m get -A 60 coap://127.0.0.1/example_data >/dev/null
# RFC 9031-style proxy request: Proxy-Scheme + Uri-Host, plus option 40 (OpenWSN Stateless-Proxy)
$C -m get -O 39,coap -O 3,registrar.example -O 40,0xdeadbeef coap://127.0.0.1/time >/dev/null || true
$C -P coap://127.0.0.1 coap://registrar.example/time >/dev/null || true
$C -s 4 -m get coap://127.0.0.1/time >/dev/null
sleep 1.5
kill "$SRV"; sleep 0.5; kill "$TD" 2>/dev/null || true; wait "$TD" 2>/dev/null || true

# --- libcoap on a non-default port -----------------------------------------
TD=$(capture libcoap_5685.pcap "udp port 5685"); PIDS+=("$TD")
sleep 1.5
"$SERVER" -p 5685 >/dev/null 2>&1 & SRV=$!; PIDS+=("$SRV")
sleep 0.5
$C -m get coap://127.0.0.1:5685/.well-known/core >/dev/null
$C -m put -e x coap://127.0.0.1:5685/example_data >/dev/null
sleep 0.5
kill "$SRV"; sleep 0.5; kill "$TD" 2>/dev/null || true; wait "$TD" 2>/dev/null || true

# --- aiocoap OSCORE ---------------------------------------------------------
python3 make_discovery.py
python3 make_oscore.py
rm -f oscore_ctx/*/sequence.json oscore_ctx/*/lock
