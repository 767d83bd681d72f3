"""Cut the two Thread joiners' EC J-PAKE DTLS handshakes out of the OpenThread capture.

Source: shared/captures/thread/thread_two_joiners.pcapng (OpenThread ot-cli-ftd simulation, see its
README). tshark reassembles the 6LoWPAN fragments and hands us each joiner<->Joiner-Router UDP
datagram (port 1000, not MAC-secured); we re-wrap the untouched DTLS payloads in Ethernet/IPv6/UDP
with the original addresses, ports and timestamps so the fixture needs no 802.15.4 keys to read.
Usage: python3 make_thread_ecjpake.py [path/to/thread_two_joiners.pcapng]
"""

from __future__ import annotations

import ipaddress
import struct
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SRC = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[3] / "shared/captures/thread/thread_two_joiners.pcapng"


def main() -> None:
    out = subprocess.run(
        ["tshark", "-r", str(SRC), "-d", "udp.port==1000,dtls", "-Y", "udp.port==1000 && dtls",
         "-T", "fields", "-e", "frame.time_epoch", "-e", "ipv6.src", "-e", "ipv6.dst",
         "-e", "udp.srcport", "-e", "udp.dstport", "-e", "udp.payload"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    recs = []
    for line in out.splitlines():
        ts, s, d, sp, dp, payload = line.split("\t")
        data = bytes.fromhex(payload)
        udp = struct.pack("!HHHH", int(sp), int(dp), 8 + len(data), 0) + data
        ip6 = struct.pack("!IHBB", 0x60000000, len(udp), 17, 64) + ipaddress.IPv6Address(s).packed \
            + ipaddress.IPv6Address(d).packed
        eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x86\xdd"
        frame = eth + ip6 + udp
        sec, frac = ts.split(".")
        recs.append(struct.pack("<IIII", int(sec), int(frac[:6].ljust(6, "0")), len(frame), len(frame)) + frame)
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    (HERE / "thread_ecjpake.pcap").write_bytes(hdr + b"".join(recs))
    print(f"thread_ecjpake.pcap: {len(recs)} datagrams")


if __name__ == "__main__":
    main()
