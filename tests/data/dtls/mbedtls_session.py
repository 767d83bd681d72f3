"""One python-mbedtls (Mbed TLS 2.28) DTLS 1.2 session on loopback, for make.sh to record.

A second, independent DTLS stack next to OpenSSL: server and client run in two threads of this
process; the server answers the cookie exchange (HelloVerifyRequest), then echoes one message.
Usage: python3 mbedtls_session.py psk|cert PORT
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from pathlib import Path

from mbedtls import pk, tls, x509

HERE = Path(__file__).parent
PSK_ID, PSK = "pledge-mbedtls", bytes.fromhex("00112233445566778899aabbccddeeff")


def configs(mode: str) -> tuple[tls.DTLSConfiguration, tls.DTLSConfiguration]:
    common = {"highest_supported_version": tls.DTLSVersion.DTLSv1_2, "handshake_timeout_min": 0.5}
    if mode == "psk":
        suite = ("TLS-PSK-WITH-AES-128-CCM-8",)
        srv = tls.DTLSConfiguration(ciphers=suite, pre_shared_key_store={PSK_ID: PSK},
                                    validate_certificates=False, **common)
        cli = tls.DTLSConfiguration(ciphers=suite, pre_shared_key=(PSK_ID, PSK),
                                    validate_certificates=False, **common)
        return srv, cli
    ca = x509.CRT.from_file(str(HERE / "ca.pem"))
    crt = x509.CRT.from_file(str(HERE / "server.pem"))
    key = pk.ECC.from_file(str(HERE / "server.key"))
    store = tls.TrustStore()
    store.add(ca)
    suite = ("TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8",)
    srv = tls.DTLSConfiguration(ciphers=suite, certificate_chain=([crt, ca], key),
                                validate_certificates=False, **common)
    cli = tls.DTLSConfiguration(ciphers=suite, trust_store=store, validate_certificates=True, **common)
    return srv, cli


def server(conf: tls.DTLSConfiguration, port: int, ready: threading.Event) -> None:
    sock = tls.ServerContext(conf).wrap_socket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(10)
    ready.set()
    conn, addr = sock.accept()
    conn.settimeout(10)  # accept() dups a non-blocking fd: give the new socket a real timeout
    conn.setcookieparam(addr[0].encode())
    with contextlib.suppress(tls.HelloVerifyRequest):
        conn.do_handshake()  # RFC 6347 §4.2.1: the first ClientHello only earns a cookie
    conn, addr = conn.accept()
    conn.settimeout(10)
    conn.setcookieparam(addr[0].encode())
    conn.do_handshake()
    data = conn.recv(4096)
    conn.send(data[::-1])
    with contextlib.suppress(Exception):
        conn.recv(4096)  # the client's close_notify
    conn.close()
    sock.close()


def main() -> None:
    mode, port = sys.argv[1], int(sys.argv[2])
    srv_conf, cli_conf = configs(mode)
    ready = threading.Event()
    t = threading.Thread(target=server, args=(srv_conf, port, ready), daemon=True)
    t.start()
    ready.wait(5)
    cli = tls.ClientContext(cli_conf).wrap_socket(
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM), server_hostname="registrar.example"
    )
    cli.settimeout(10)
    cli.connect(("127.0.0.1", port))
    cli.do_handshake()
    cli.send(b"hello from an mbedtls pledge\n")
    print(cli.recv(4096))
    cli.close()
    t.join(10)


if __name__ == "__main__":
    main()
