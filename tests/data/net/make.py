#!/usr/bin/env python3
"""Regenerate the link/network-layer fixture captures in this directory.

Run as root from anywhere: ``python3 tests/data/net/make.py``.  Needs ``ip``
(iproute2, network namespaces), ``tcpdump``, ``editcap`` and scapy.

Most fixtures are *real* kernel traffic: two network namespaces joined by a
veth pair whose MTU is 1280, so the kernel itself fragments 3000-byte UDP
datagrams (IPv4 and IPv6), answers a closed port with ICMP / ICMPv6 port
unreachable, answers echo requests, resolves neighbours (ARP, IPv6 ND), sends
MLD reports and router solicitations, builds IPv4 options (IP_OPTIONS: NOP,
record route, router alert, timestamp) and IPv6 hop-by-hop / destination
options headers (IPV6_HOPOPTS / IPV6_DSTOPTS), and tags frames on 802.1Q and
802.1ad (QinQ) VLAN sub-interfaces.  tcpdump records it three times: on the
veth (Ethernet, linktype 1) and on ``any`` as Linux cooked v1 (113) and v2
(276).

The other link types cannot be produced on Linux, so they re-encapsulate the
real IP packets from the Ethernet capture: BSD NULL (0, both byte orders),
OpenBSD LOOP (108), raw IP (101, and the old 12/14 numbers), raw IPv4 (228),
raw IPv6 (229).  ``trunc_snap30.pcap`` is the Ethernet capture cut by
``editcap -s 30`` (mid IPv4 header).  ``crafted_bad.pcap`` holds hand-built
malformed packets (scapy), described next to each packet below.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NS_A, NS_B = "jpnetA", "jpnetB"
IF_A, IF_B = "jpva", "jpvb"
MTU = 1280
V4A, V4B = "10.99.0.1", "10.99.0.2"
V6A, V6B = "fd00:99::1", "fd00:99::2"
ECHO_PORT, CLOSED_PORT = 7777, 9999
BIG = 3000  # > MTU on both families, so the kernel fragments it into 3 pieces

# The client/server programs run inside the namespaces.
ECHO_SERVER = f"""
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", {ECHO_PORT}))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
"""

CLIENT = f"""
import socket, struct, time

def csum(b):
    if len(b) % 2:
        b += b"\\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def udp(fam, dst, port, data, opts=None):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    if opts:
        for lvl, name, val in opts:
            s.setsockopt(lvl, name, val)
    s.sendto(data, (dst, port))
    try:
        s.recvfrom(65535)
    except OSError:
        pass
    s.close()
    time.sleep(0.2)

udp(socket.AF_INET, "{V4B}", {ECHO_PORT}, b"hello v4")
udp(socket.AF_INET6, "{V6B}", {ECHO_PORT}, b"hello v6")
udp(socket.AF_INET, "{V4B}", {ECHO_PORT}, bytes(range(256)) * 11 + b"x" * ({BIG} - 2816))
udp(socket.AF_INET6, "{V6B}", {ECHO_PORT}, bytes(range(256)) * 11 + b"y" * ({BIG} - 2816))
udp(socket.AF_INET, "{V4B}", {CLOSED_PORT}, b"nobody listens v4")
udp(socket.AF_INET6, "{V6B}", {CLOSED_PORT}, b"nobody listens v6")
# IPv4 options built by the kernel (RFC 791 section 3.1): NOP, record route
# (1 slot), router alert (RFC 2113), timestamp (2 slots, flag 0).
ipopts = b"\\x01" + b"\\x07\\x07\\x04" + b"\\0" * 4 + b"\\x94\\x04\\x00\\x00" + b"\\x44\\x0c\\x05\\x00" + b"\\0" * 8
udp(socket.AF_INET, "{V4B}", {ECHO_PORT}, b"with ip options", [(socket.IPPROTO_IP, socket.IP_OPTIONS, ipopts)])
# IPv6 hop-by-hop (router alert, RFC 2711) and destination options (PadN)
# headers, RFC 8200 section 4.3 / 4.6; also on a fragmented datagram.
hbh = bytes([0, 0, 5, 2, 0, 0, 1, 0])
dst = bytes([0, 0, 1, 4, 0, 0, 0, 0])
ext = [(socket.IPPROTO_IPV6, socket.IPV6_HOPOPTS, hbh), (socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, dst)]
udp(socket.AF_INET6, "{V6B}", {ECHO_PORT}, b"with ext headers", ext)
udp(socket.AF_INET6, "{V6B}", {CLOSED_PORT}, b"z" * {BIG}, ext)
# ICMP / ICMPv6 echo through raw sockets; the replies are the kernel's.
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
body = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + b"ping v4"
body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
s.sendto(body, ("{V4B}", 0))
time.sleep(0.2)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s6.sendto(struct.pack("!BBHHH", 128, 0, 0, 0x1234, 1) + b"ping v6", ("{V6B}", 0))
time.sleep(0.2)
"""


def sh(*args: str, check: bool = True) -> None:
    subprocess.run(args, check=check)


def nsx(ns: str, *args: str, check: bool = True) -> None:
    sh("ip", "netns", "exec", ns, *args, check=check)


def teardown() -> None:
    for ns in (NS_A, NS_B):
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL, check=False)


def setup() -> None:
    teardown()
    sh("ip", "netns", "add", NS_A)
    sh("ip", "netns", "add", NS_B)
    sh("ip", "link", "add", IF_A, "netns", NS_A, "type", "veth", "peer", "name", IF_B, "netns", NS_B)
    for ns, ifname, v4, v6 in ((NS_A, IF_A, V4A, V6A), (NS_B, IF_B, V4B, V6B)):
        nsx(ns, "ip", "link", "set", "lo", "up")
        nsx(ns, "ip", "link", "set", ifname, "mtu", str(MTU))
        nsx(ns, "ip", "addr", "add", f"{v4}/24", "dev", ifname)
        nsx(ns, "ip", "-6", "addr", "add", f"{v6}/64", "dev", ifname, "nodad")
        nsx(ns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        nsx(ns, "sysctl", "-qw", "net.ipv6.icmp.ratelimit=0")
        # RFC 4861 neighbour discovery and RFC 3810 MLD need IPv6 up; keep
        # the link-local DAD quick so the capture is short.
        nsx(ns, "sysctl", "-qw", f"net.ipv6.conf.{ifname}.dad_transmits=0")


def bring_up(ns: str, ifname: str) -> None:
    nsx(ns, "ip", "link", "set", ifname, "up")


def capture() -> None:
    out = {
        "eth_veth.pcap": ["-i", IF_A],
        "sll_any.pcap": ["-i", "any", "-y", "LINUX_SLL"],
        "sll2_any.pcap": ["-i", "any", "-y", "LINUX_SLL2"],
    }
    # tcpdump refuses a down device; A's end stays without carrier (so
    # without IPv6 activity) until B's end comes up below.
    bring_up(NS_A, IF_A)
    procs = []
    for name, args in out.items():
        cmd = ["ip", "netns", "exec", NS_A, "timeout", "30", "tcpdump", "-U", "-n", "-s", "0",
               *args, "-w", str(HERE / name)]
        procs.append(subprocess.Popen(cmd, stderr=subprocess.DEVNULL))
    echo = subprocess.Popen(["ip", "netns", "exec", NS_B, "timeout", "30", sys.executable, "-c", ECHO_SERVER])
    try:
        time.sleep(1.5)
        bring_up(NS_B, IF_B)
        time.sleep(2.5)  # router solicitation and MLD reports go out after link up
        nsx(NS_A, "timeout", "20", sys.executable, "-c", CLIENT)
        time.sleep(1.0)
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        echo.kill()
        echo.wait()


def derived() -> None:
    from scapy.all import Ether, PcapReader, raw

    ip_pkts: list[bytes] = []
    with PcapReader(str(HERE / "eth_veth.pcap")) as rd:
        for p in rd:
            if isinstance(p, Ether) and p.type in (0x0800, 0x86DD):
                ip_pkts.append(raw(p.payload))
    # A few IPv4 and IPv6 packets each (incl. one fragment train of each kind).
    v4 = [b for b in ip_pkts if b[0] >> 4 == 4][:8]
    v6 = [b for b in ip_pkts if b[0] >> 4 == 6][:8]

    def write(name: str, linktype: int, frames: list[bytes]) -> None:
        write_pcap(HERE / name, linktype, frames, 1_700_000_000)

    # BSD NULL: 4-byte address family in the *writer's* byte order (here both),
    # AF_INET 2, AF_INET6 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
    null = []
    for i, b in enumerate(v4[:3] + v6[:3]):
        fam = 2 if b[0] >> 4 == 4 else (24, 28, 30)[i % 3]
        null.append(struct.pack("<I" if i % 2 == 0 else ">I", fam) + b)
    write("null.pcap", 0, null)
    # Linux's AF_INET6 value (10): Wireshark shows data, jpdissect decodes IPv6 (kept apart
    # from null.pcap, whose every field must match tshark).
    write("null_af10.pcap", 0, [struct.pack("<I", 10) + v6[3], struct.pack(">I", 10) + v6[3]])
    # OpenBSD LOOP: always network byte order.
    write("loop.pcap", 108, [struct.pack(">I", 2) + v4[0], struct.pack(">I", 24) + v6[0]])
    write("raw101.pcap", 101, v4[:4] + v6[:4])
    write("raw12.pcap", 12, v4[:2] + v6[:2])
    write("raw14.pcap", 14, v4[:2] + v6[:2])
    write("raw228.pcap", 228, v4[:4])
    write("raw229.pcap", 229, v6[:4])
    vlan(ip_pkts)
    crafted_more()
    sh("editcap", "-s", "30", str(HERE / "eth_veth.pcap"), str(HERE / "trunc_snap30.pcap"))
    crafted()


def write_pcap(path: Path, linktype: int, frames: list[bytes], t0: int) -> None:
    """Classic pcap (microsecond magic), one frame per second from ``t0``.

    Written by hand because scapy's PcapWriter treats linktype 0 as "unset".
    """
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", t0 + i, 0, len(fr), len(fr)) + fr)


def vlan(ip_pkts: list[bytes]) -> None:
    """Real IP packets re-framed with IEEE 802.1Q / 802.1ad tags (scapy).

    The container cannot load the 8021q module, so the tags are added here:
    IEEE 802.1Q-2018 §9.6 (TPID 0x8100, PCP 3 bits, DEI 1 bit, VID 12 bits)
    and §9.5 (S-tag TPID 0x88a8, QinQ: S-tag then C-tag).
    """
    from scapy.all import Dot1AD, Dot1Q, Ether, Raw, raw

    eth = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")
    udp4 = next(b for b in ip_pkts if b[0] >> 4 == 4 and b[9] == 17 and len(b) < 100)
    udp6 = next(b for b in ip_pkts if b[0] >> 4 == 6 and b[6] == 17 and len(b) < 100)
    icmp4 = next(b for b in ip_pkts if b[0] >> 4 == 4 and b[9] == 1 and b[20] == 3)
    frames = [
        raw(eth / Dot1Q(vlan=100, prio=5, type=0x0800) / Raw(udp4)),
        raw(eth / Dot1Q(vlan=100, prio=0, id=1, type=0x86DD) / Raw(udp6)),
        raw(eth / Dot1AD(vlan=200, prio=3, type=0x8100) / Dot1Q(vlan=300, type=0x0800) / Raw(icmp4)),
        raw(eth / Dot1AD(vlan=4095, type=0x8100) / Dot1Q(vlan=1, type=0x86DD) / Raw(udp6)),
    ]
    # A short frame padded to the 60-byte Ethernet minimum (IEEE 802.3 §3.2.8).
    short = raw(eth / Dot1Q(vlan=7, type=0x0800) / Raw(udp4))
    frames.append(short + b"\0" * max(0, 60 - len(short)) if len(short) < 60 else short)
    tiny = raw(Ether(src="02:00:00:00:00:0a", dst="ff:ff:ff:ff:ff:ff", type=0x0800) / Raw(udp4))
    frames.append(tiny + b"\0" * max(0, 60 - len(tiny)))
    write_pcap(HERE / "vlan.pcap", 1, frames, 1_700_000_050)


def crafted() -> None:
    """Hand-built malformed packets (scapy), each breaking one header rule."""
    from scapy.all import IP, UDP, Dot1Q, Ether, IPv6, raw

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    frames = [
        # 1. RFC 791 §3.1: Total Length (200) larger than the bytes present.
        raw(eth / IP(src="192.0.2.1", dst="192.0.2.2", len=200) / UDP(sport=1000, dport=2000) / b"abcd"),
        # 2. RFC 768: UDP Length (100) larger than the IP payload (12).
        raw(eth / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1000, dport=2000, len=100) / b"abcd"),
        # 3. RFC 791 §3.1: IHL 15 (60 bytes) but only 24 bytes follow the Ethernet header.
        raw(eth / IP())[:14] + bytes.fromhex("4f000018000100004011") + b"\0" * 14,
        # 4. RFC 791 §3.1: IHL 4 (< 5), a bogus header length.
        raw(eth / IP(src="192.0.2.1", dst="192.0.2.2", ihl=4) / UDP(sport=1, dport=2)),
        # 5. RFC 8200 §3: IPv6 Payload Length (500) larger than the bytes present.
        raw(eth / IPv6(src="2001:db8::1", dst="2001:db8::2", plen=500) / UDP(sport=3000, dport=4000) / b"v6"),
        # 6. RFC 768: UDP Length 4 (< 8 header bytes).
        raw(eth / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=3000, dport=4000, len=4) / b"v6"),
        # 7. A VLAN tag (IEEE 802.1Q) with nothing after it.
        raw(eth / Dot1Q(vlan=5))[:16],
        # 8. IPv4 header checksum wrong (RFC 791 §3.1), for ip.check_checksum.
        raw(eth / IP(src="192.0.2.1", dst="192.0.2.2", chksum=0x1234) / UDP(sport=5, dport=6) / b"x"),
        # 9. IPv4 with an option whose length runs past the header (RFC 791 §3.1).
        raw(eth / IP(src="192.0.2.1", dst="192.0.2.2", options=b"\x07\x27\x04\x00") / UDP(sport=7, dport=8)),
        # 10. A frame that really ends (on the wire too) 12 bytes into the IPv4 header (RFC 791 §3.1: 20).
        raw(eth / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=2))[:14 + 12],
        # 11. The same for IPv6: 20 of the 40 header bytes (RFC 8200 §3).
        raw(eth / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2))[:14 + 20],
        # 12. A UDP header cut after 5 bytes (RFC 768: 8).
        raw(eth / IP(src="192.0.2.1", dst="192.0.2.2", len=25) / UDP(sport=1, dport=2))[:14 + 25],
    ]
    write_pcap(HERE / "crafted_bad.pcap", 1, frames, 1_700_000_100)


def crafted_more() -> None:
    """Hand-built packets for paths the kernel traffic does not reach (scapy); RFCs cited per packet."""
    from scapy.all import (
        ICMP,
        IP,
        UDP,
        Ether,
        ICMPv6DestUnreach,
        ICMPv6PacketTooBig,
        ICMPv6TimeExceeded,
        IPv6,
        IPv6ExtHdrRouting,
        fragment,
        fragment6,
        raw,
    )
    from scapy.layers.inet6 import IPv6ExtHdrFragment

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    # RFC 792 / RFC 1812 §4.3.2.3: an ICMP error quoting only the IP header + 8 bytes of a
    # datagram whose flow was never seen (tshark still gives the quoted UDP a stream).
    inner = raw(IP(src="192.0.2.2", dst="198.51.100.1", len=1000, id=7)
                / UDP(sport=41111, dport=42222, len=980))[:28]
    # ... and one quoting a first fragment (MF set): the quoted UDP header is still decoded.
    inner_frag = raw(IP(src="192.0.2.2", dst="198.51.100.1", len=1000, id=8, flags="MF")
                     / UDP(sport=41111, dport=42222, len=980))[:28]
    # RFC 4443 §3.1: ICMPv6 errors quote as much as fits; here 48 bytes of a 1048-byte datagram.
    inner6 = raw(IPv6(src="2001:db8::2", dst="2001:db8::3", plen=1000)
                 / UDP(sport=5555, dport=6666, len=1000))[:48]
    frames = [
        raw(eth / IP(src="192.0.2.9", dst="192.0.2.2") / ICMP(type=3, code=3) / inner),
        raw(eth / IP(src="192.0.2.7", dst="192.0.2.8") / UDP(sport=3333, dport=4444) / b"hi"),
        raw(eth / IP(src="192.0.2.2", dst="198.51.100.1") / UDP(sport=41111, dport=42222) / b"yo"),
        raw(eth / IPv6(src="2001:db8::9", dst="2001:db8::2") / ICMPv6DestUnreach(code=4) / inner6),
        raw(eth / IPv6(src="2001:db8::2", dst="2001:db8::3") / UDP(sport=5555, dport=6666) / b"zz"),
        raw(eth / IP(src="192.0.2.9", dst="192.0.2.2") / ICMP(type=11, code=0) / inner_frag),
        # RFC 1191 §4: fragmentation needed, with the next-hop MTU.
        raw(eth / IP(src="192.0.2.9", dst="192.0.2.2") / ICMP(type=3, code=4, nexthopmtu=1280) / inner),
        # RFC 8201 §4 / RFC 4443 §3.2: Packet Too Big; §3.3 Time Exceeded.
        raw(eth / IPv6(src="2001:db8::9", dst="2001:db8::2") / ICMPv6PacketTooBig(mtu=1280) / inner6),
        raw(eth / IPv6(src="2001:db8::9", dst="2001:db8::2") / ICMPv6TimeExceeded(code=0) / inner6),
        # RFC 8200 §8.1: a zero UDP checksum over IPv6 is illegal.
        raw(eth / IPv6(src="2001:db8::2", dst="2001:db8::3") / UDP(sport=7000, dport=7001, chksum=0) / b"z"),
        # RFC 768: a zero UDP checksum over IPv4 means "not computed".
        raw(eth / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=7000, dport=7001, chksum=0) / b"z"),
        # RFC 8200 §4.4 / RFC 5095: a (deprecated) type 0 routing header with two addresses.
        raw(eth / IPv6(src="2001:db8::1", dst="2001:db8::2")
            / IPv6ExtHdrRouting(type=0, addresses=["2001:db8::10", "2001:db8::11"], segleft=2)
            / UDP(sport=8000, dport=8001) / b"rt"),
        # RFC 791 §3.1: NOP, NOP, EOL, then padding in a 4-byte option area.
        raw(eth / IP(src="192.0.2.1", dst="192.0.2.2", options=b"\x01\x01\x00\x00") / UDP(sport=9, dport=9) / b"e"),
        # RFC 791 §3.1: a loose source route (3 addresses, pointer on the second).
        raw(eth / IP(src="192.0.2.1", dst="192.0.2.2",
                     options=b"\x83\x0f\x08" + bytes([10, 0, 0, 1, 10, 0, 0, 2, 10, 0, 0, 3]) + b"\x00")
            / UDP(sport=9, dport=9) / b"s"),
    ]
    # RFC 791 §3.2: an IPv4 datagram fragmented in three, sent last-first.
    frags = fragment(IP(src="192.0.2.1", dst="192.0.2.2", id=0x4242) / UDP(sport=1234, dport=5678)
                     / (b"A" * 40), fragsize=16)
    frames += [raw(eth / f) for f in reversed(frags)]
    # RFC 5722: overlapping IPv4 fragments -- the same bytes twice (a duplicate), then a
    # fragment overlapping with *different* bytes, then the completing one.
    dup = fragment(IP(src="192.0.2.1", dst="192.0.2.2", id=0x4343) / UDP(sport=1, dport=2) / (b"B" * 40),
                   fragsize=16)
    frames += [raw(eth / dup[0]), raw(eth / dup[0])]
    bad = dup[1].copy()
    bad.load = b"X" * len(bad.load)
    frames += [raw(eth / bad), raw(eth / dup[1]), raw(eth / dup[2])]
    # RFC 8200 §4.5: IPv6 fragments out of order.
    f6 = fragment6(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(id=0xABCD)
                   / UDP(sport=4321, dport=8765) / (b"C" * 120), 80)
    frames += [raw(eth / f) for f in reversed(f6)]
    write_pcap(HERE / "crafted_more.pcap", 1, frames, 1_700_000_200)


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("make.py needs root (network namespaces, tcpdump)")
    for tool in ("ip", "tcpdump", "editcap"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found")
    if "--derived-only" not in sys.argv:
        setup()
        try:
            capture()
        finally:
            teardown()
    derived()
    for f in sorted(HERE.glob("*.pcap")):
        print(f"{f.name}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
