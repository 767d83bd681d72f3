#!/usr/bin/env bash
# Regenerate the DTLS fixtures: real OpenSSL (and python-mbedtls) DTLS sessions recorded on loopback.
#
# Needs root (tcpdump on lo), openssl 3.x, tcpdump, python3 with python-mbedtls for the mbedtls_*
# captures. Every process is bounded by `timeout` and killed by its own pid.  Each capture keeps its
# keylog (NSS SSLKEYLOGFILE format, written by -keylogfile) next to it for the decryption issue.
#
#   bash tests/data/dtls/make.sh            # all fixtures
#   bash tests/data/dtls/make.sh keys       # only (re)make keys and certificates
#   bash tests/data/dtls/make.sh thread     # only re-cut thread_ecjpake.pcap (needs tshark)
set -u
cd "$(dirname "$0")"
PORT=5684
HOST=127.0.0.1
PSK=00112233445566778899aabbccddeeff

keys() {
  # ECDSA P-256 CA and a server certificate whose subject carries an IDevID-style serialNumber
  # (802.1AR / RFC 8995 pledges identify themselves by it).
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 7300 -subj "/O=jpdissect test/CN=jpdissect Test CA" \
    -set_serial 1 -out ca.pem
  openssl ecparam -name prime256v1 -genkey -noout -out server.key
  openssl req -new -key server.key -subj "/O=jpdissect test/CN=registrar.example/serialNumber=JP-REG-0001" \
    -out server.csr
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 4660 -days 7300 -sha256 \
    -out server.pem
  openssl ecparam -name prime256v1 -genkey -noout -out client.key
  openssl req -new -key client.key -subj "/O=jpdissect test/CN=pledge/serialNumber=PLEDGE-00-11-22-33" \
    -out client.csr
  openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -set_serial 4661 -days 7300 -sha256 \
    -out client.pem
  rm -f server.csr client.csr
}

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; PIDS=(); }
trap cleanup EXIT

start_capture() {  # $1 = output pcap
  timeout 30 tcpdump -i lo -U -s 0 -w "$1" udp port $PORT 2>/dev/null &
  PIDS+=($!); TCPDUMP=$!
  sleep 1
}
stop_capture() {
  sleep 0.5
  kill -INT "$TCPDUMP" 2>/dev/null; wait "$TCPDUMP" 2>/dev/null
}

# $1 name, $2 server args, $3 client args, $4 extra client args for the second run ("" = none)
session() {
  local name=$1 sargs=$2 cargs=$3
  rm -f "$name.keylog"
  start_capture "$name.pcap"
  # The server sends a line from its stdin once the client is connected: application data both ways
  # (s_server's -rev echo mode is TLS-only).
  (sleep 2.5; printf 'hello from the registrar\n'; sleep 2) | \
    timeout 15 openssl s_server -dtls1_2 -accept $PORT -naccept 1 -keylogfile "$name.keylog" $sargs \
    >/dev/null 2>&1 &
  local spid=$!; PIDS+=($spid)
  sleep 0.7
  (sleep 1; printf 'hello from the pledge\n'; sleep 3) | \
    timeout 10 openssl s_client -dtls1_2 -connect $HOST:$PORT -no_ign_eof $cargs >/dev/null 2>&1
  wait $spid 2>/dev/null
  stop_capture
  echo "$name.pcap: $(tcpdump -r "$name.pcap" 2>/dev/null | wc -l) datagrams"
}

fixtures() {
  CERT="-cert server.pem -key server.key"
  # 1. Certificate handshake, AES-CCM-8 (RFC 7251), with HelloVerifyRequest and a NewSessionTicket.
  session cert_ccm8 "$CERT -cipher ECDHE-ECDSA-AES128-CCM8" "-cipher ECDHE-ECDSA-AES128-CCM8"
  # 2. Mutual authentication with GCM: CertificateRequest, client Certificate and CertificateVerify.
  session cert_gcm_mutual "$CERT -cipher ECDHE-ECDSA-AES128-GCM-SHA256 -Verify 1 -CAfile ca.pem" \
    "-cipher ECDHE-ECDSA-AES128-GCM-SHA256 -cert client.pem -key client.key -CAfile ca.pem"
  # 3. PSK with AES-CCM-8 (RFC 6655): ServerKeyExchange/ClientKeyExchange carry the PSK identity.
  session psk_ccm8 "-nocert -psk $PSK -psk_identity pledge-0001 -psk_hint registrar -cipher PSK-AES128-CCM8" \
    "-psk $PSK -psk_identity pledge-0001 -cipher PSK-AES128-CCM8"
  # 4. A 256-byte MTU on both sides: the handshake messages are fragmented across datagrams.
  session cert_mtu256 "$CERT -cipher ECDHE-ECDSA-AES128-CCM8 -mtu 256" \
    "-cipher ECDHE-ECDSA-AES128-CCM8 -mtu 256"
  # 5. A failed handshake: no common cipher suite, the server answers with a plaintext alert.
  session alert_nocipher "$CERT -cipher ECDHE-ECDSA-AES128-CCM8" "-cipher ECDHE-ECDSA-AES256-GCM-SHA384"
  # 6. DTLS 1.0 (RFC 4347 version 0xfeff) needs SHA-1 suites, so security level 0.
  rm -f dtls10.keylog
  start_capture dtls10.pcap
  (sleep 2.5; printf 'hello from the registrar\n'; sleep 2) | \
    timeout 15 openssl s_server -dtls1 -accept $PORT -naccept 1 -keylogfile dtls10.keylog $CERT \
    -cipher 'ECDHE-ECDSA-AES128-SHA@SECLEVEL=0' >/dev/null 2>&1 &
  local spid=$!; PIDS+=($spid); sleep 0.7
  (sleep 1; printf 'hello over dtls 1.0\n'; sleep 3) | timeout 10 openssl s_client -dtls1 -connect $HOST:$PORT \
    -no_ign_eof -cipher 'ECDHE-ECDSA-AES128-SHA@SECLEVEL=0' >/dev/null 2>&1
  wait $spid 2>/dev/null; stop_capture
  echo "dtls10.pcap: $(tcpdump -r dtls10.pcap 2>/dev/null | wc -l) datagrams"
  # 7. Through a stateful join proxy on port 5685 that drops the Registrar's second datagram once:
  #    both legs of the relay and a real retransmitted flight.
  rm -f relay_retransmit.keylog
  timeout 30 tcpdump -i lo -U -s 0 -w relay_retransmit.pcap "udp port $PORT or udp port 5685" 2>/dev/null &
  PIDS+=($!); TCPDUMP=$!; sleep 1
  (sleep 4.5; printf 'hello from the registrar\n'; sleep 2) | \
    timeout 20 openssl s_server -dtls1_2 -accept $PORT -naccept 1 -keylogfile relay_retransmit.keylog $CERT \
    -cipher ECDHE-ECDSA-AES128-CCM8 >/dev/null 2>&1 &
  local rspid=$!; PIDS+=($rspid); sleep 0.5
  timeout 25 python3 relay.py 5685 $PORT 2 4 &
  local rpid=$!; PIDS+=($rpid); sleep 0.5
  (sleep 3; printf 'hello from the pledge\n'; sleep 4) | timeout 15 openssl s_client -dtls1_2 \
    -connect $HOST:5685 -no_ign_eof -cipher ECDHE-ECDSA-AES128-CCM8 >/dev/null 2>&1
  wait $rspid 2>/dev/null; wait $rpid 2>/dev/null; stop_capture
  echo "relay_retransmit.pcap: $(tcpdump -r relay_retransmit.pcap 2>/dev/null | wc -l) datagrams"
  # 8. python-mbedtls (Mbed TLS 2.28), a second, independent DTLS stack.
  if python3 -c 'import mbedtls' 2>/dev/null; then
    for mode in psk cert; do
      start_capture "mbedtls_$mode.pcap"
      timeout 20 python3 mbedtls_session.py "$mode" $PORT || echo "mbedtls $mode failed"
      stop_capture
      echo "mbedtls_$mode.pcap: $(tcpdump -r "mbedtls_$mode.pcap" 2>/dev/null | wc -l) datagrams"
    done
  else
    echo "python-mbedtls not installed: mbedtls_*.pcap not regenerated"
  fi
}

thread() {
  # 9. EC J-PAKE (TLS_ECJPAKE_WITH_AES_128_CCM_8) joiner handshakes cut from the OpenThread capture.
  python3 make_thread_ecjpake.py ${THREAD_PCAPNG:-}
}

case "${1:-all}" in
  keys) keys ;;
  thread) thread ;;
  all) [ -f ca.pem ] || keys; fixtures; thread ;;
  *) echo "usage: $0 [keys|thread|all]"; exit 2 ;;
esac
