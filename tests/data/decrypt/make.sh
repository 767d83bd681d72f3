#!/usr/bin/env bash
# Regenerate the decryption fixtures: real OpenSSL DTLS 1.2 sessions on loopback, with their key logs.
#
# Needs root (tcpdump on lo), openssl 3.x, tcpdump, editcap. Every process is bounded by `timeout` and
# killed by its own pid. Each session carries two known lines of application data -- one piped into
# s_client, one into s_server -- recorded in expected.json, so the tests can check that decryption gives
# back exactly what was sent.
#
#   bash tests/data/decrypt/make.sh
set -u
cd "$(dirname "$0")"
PORT=5684
HOST=127.0.0.1
PSK=5ec2e7ba11ad5eedfacade0123456789
CERT="-cert server.pem -key server.key"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; PIDS=(); }
trap cleanup EXIT
echo "{" > expected.json
FIRST=1

session() {  # $1 name, $2 openssl cipher, $3 extra server args, $4 extra client args
  local name=$1 cipher=$2 sargs=$3 cargs=$4
  local cmsg="pledge says hello over $cipher" smsg="registrar answers over $cipher"
  rm -f "$name.keylog" "$name.pcap"
  timeout 30 tcpdump -i lo -U -s 0 -w "$name.pcap" udp port $PORT 2>/dev/null &
  local tpid=$!; PIDS+=($tpid); sleep 1
  (sleep 2.5; printf '%s\n' "$smsg"; sleep 2) | \
    timeout 15 openssl s_server -dtls1_2 -accept $PORT -naccept 1 -keylogfile "$name.keylog" \
      -cipher "$cipher" $sargs >/dev/null 2>&1 &
  local spid=$!; PIDS+=($spid); sleep 0.7
  (sleep 1; printf '%s\n' "$cmsg"; sleep 3) | \
    timeout 10 openssl s_client -dtls1_2 -connect $HOST:$PORT -no_ign_eof -cipher "$cipher" $cargs \
      >/dev/null 2>&1
  wait $spid 2>/dev/null
  sleep 0.5; kill -INT $tpid 2>/dev/null; wait $tpid 2>/dev/null
  [ $FIRST = 1 ] || echo "," >> expected.json
  FIRST=0
  printf '  "%s": {"cipher": "%s", "client": "%s\\n", "server": "%s\\n"}' "$name" "$cipher" "$cmsg" "$smsg" \
    >> expected.json
  echo "$name.pcap: $(tcpdump -r "$name.pcap" 2>/dev/null | wc -l) datagrams, $(wc -l < "$name.keylog") keylog lines"
}

session cert_ccm8 ECDHE-ECDSA-AES128-CCM8 "$CERT" ""
session cert_gcm ECDHE-ECDSA-AES128-GCM-SHA256 "$CERT" ""
session psk_ccm8 PSK-AES128-CCM8 "-nocert -psk $PSK -psk_identity pledge-psk" "-psk $PSK -psk_identity pledge-psk"
session cert_chacha ECDHE-ECDSA-CHACHA20-POLY1305 "$CERT" ""
session cert_ccm ECDHE-ECDSA-AES128-CCM "$CERT" ""
session psk_gcm256 PSK-AES256-GCM-SHA384 "-nocert -psk $PSK -psk_identity pledge-psk" "-psk $PSK -psk_identity pledge-psk"
printf '\n}\n' >> expected.json
echo "$PSK" > psk.hex
# The same GCM session with its key log embedded as a pcapng Decryption Secrets Block (type TLSK).
editcap --inject-secrets tls,cert_gcm.keylog cert_gcm.pcap cert_gcm_dsb.pcapng
