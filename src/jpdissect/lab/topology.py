"""The lab network: pledges, Join Proxy and Registrar as separate hosts, and the capture on the JP.

With root and network namespaces (:class:`NetnsTopology`) every host gets its own namespace::

    pledge 1 ─┐                                   (bb0)              (eth0)
    pledge 2 ─┼─ lln0 (bridge) ── Join Proxy ── 2001:db8:1::1 ─── 2001:db8:1::2 Registrar
    pledge N ─┘   fe80::1

Pledges have one IPv6 link-local address each (a modified EUI-64 from a fixed MAC) and nothing else;
the JP has ``fe80::1`` on its pledge-side bridge and a routable address on its backbone veth; the
Registrar a routable address. Neighbour entries are static and auto-configuration is off, so the
capture holds the onboarding and nothing else. ``dumpcap`` runs in the JP namespace on ``lln0`` and
``bb0`` into one pcapng with two interfaces: the two hops as the JP sees them. ``tc netem`` on the
pledge links (both directions) adds loss and delay, the radio hop being the lossy one; on a kernel
without ``sch_netem`` loss comes from nftables random drops in the pledge namespaces instead (delay
then is not available), and the run says which was used.

Linux turns IPv6 off on a link whose MTU is below 1280 (RFC 8200 §5), so a small ``--mtu`` is applied
where it matters for fragmentation: the DTLS stacks' own path MTU (``-mtu``, ``setmtu``).

Without root or namespaces, :class:`LoopbackTopology` puts every host on ``::1`` with distinct ports,
captures ``lo`` if dumpcap may, and says so; there is no link-local hop and no impairment then.

Every command is bounded by a timeout; :meth:`Topology.teardown` deletes what setup created, and is
safe to call after a partial setup.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

#: Every namespace this lab creates starts with this, so stale ones can be found and removed.
NS_PREFIX = "jplab"
#: Seconds any one setup/teardown command may take.
CMD_TIMEOUT = 10.0
#: Seconds dumpcap may take to say it is capturing, and to finish writing after SIGINT.
CAPTURE_START_TIMEOUT = 10.0
CAPTURE_STOP_TIMEOUT = 10.0
#: Capture filter: the onboarding (UDP) and ICMPv6 errors (types < 128, e.g. the stateful JP's
#: "administratively prohibited"); neighbour discovery and MLD stay out of the picture.
CAPTURE_FILTER = "udp or (icmp6 and ip6[40] < 128)"
#: Most pledges one run may create (one namespace and veth pair each).
MAX_PLEDGES = 64

JP_LL = "fe80::1"
JP_BB = "2001:db8:1::1"
REG_ADDR = "2001:db8:1::2"
BB_PREFIX_LEN = 64
JP_LLN_IF, JP_BB_IF, HOST_IF = "lln0", "bb0", "eth0"
JP_LLN_MAC, JP_BB_MAC, REG_MAC = "02:4a:50:00:00:01", "02:4a:50:00:00:02", "02:52:47:00:00:01"


def pledge_mac(i: int) -> str:
    return f"02:50:4c:00:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}"


def eui64_link_local(mac: str) -> str:
    """RFC 4291 Appendix A: the modified EUI-64 IID of a MAC, as a ``fe80::/64`` address."""
    b = bytes.fromhex(mac.replace(":", ""))
    iid = bytes((b[0] ^ 0x02,)) + b[1:3] + b"\xff\xfe" + b[3:6]
    groups = [f"{int.from_bytes(iid[k:k + 2], 'big'):x}" for k in range(0, 8, 2)]
    import ipaddress

    return str(ipaddress.IPv6Address("fe80::" + ":".join(groups)))


class TopologyError(RuntimeError):
    """Setup failed; the message says which command and why."""


def can_use_netns() -> tuple[bool, str]:
    """Whether namespaces can be built here, and if not, the reason to tell the user."""
    if os.geteuid() != 0:
        return False, "not root: network namespaces need CAP_SYS_ADMIN"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return False, f"'{tool}' (iproute2) not installed"
    probe = f"{NS_PREFIX}probe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=CMD_TIMEOUT)
    if r.returncode != 0:
        return False, f"'ip netns add' failed: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=CMD_TIMEOUT)
    return True, ""


def stale_namespaces() -> list[str]:
    """Namespaces left by an earlier lab run that was killed before it could clean up."""
    r = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, timeout=CMD_TIMEOUT)
    if r.returncode != 0 or not r.stdout.strip():
        return []
    return [n["name"] for n in json.loads(r.stdout) if n.get("name", "").startswith(NS_PREFIX)]


@dataclass
class Endpoint:
    """How one host is reached and where its programs run."""

    name: str
    netns: str | None
    addr: str
    ifname: str = ""
    ifindex: int = 0
    mac: str = ""

    def wrap(self, argv: list[str]) -> list[str]:
        """The command line that runs ``argv`` on this host."""
        if self.netns is None:
            return argv
        return ["ip", "netns", "exec", self.netns, *argv]


@dataclass
class Topology:
    """What the runner needs to know about the network, whichever kind it is."""

    kind: str
    pledges: list[Endpoint]
    jp_lln: Endpoint
    jp_bb: Endpoint
    registrar: Endpoint
    #: Ports are shifted in loopback mode so that every role can listen on ::1 at once.
    port_offset: int = 0
    notes: list[str] = field(default_factory=list)
    capture_interfaces: list[str] = field(default_factory=list)
    _capture: asyncio.subprocess.Process | None = None
    _capture_path: Path | None = None
    capture_stats: str = ""

    # -- what pledges connect to ---------------------------------------
    def jp_address_for(self, pledge: Endpoint) -> str:
        """The JP's pledge-side address as the pledge must name it (with its own scope)."""
        if self.kind == "loopback":
            return self.jp_lln.addr
        return f"{self.jp_lln.addr}%{pledge.ifname}"

    def port(self, base: int) -> int:
        return base + self.port_offset

    def setup(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def teardown(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    # -- capture -----------------------------------------------------------
    async def start_capture(self, path: Path, comment: str, extra_filter: str = "") -> bool:
        """Start dumpcap on the JP's interfaces; False (with a note) when it cannot run."""
        dumpcap = shutil.which("dumpcap")
        if dumpcap is None:
            self.notes.append("dumpcap not installed: no capture written (apt-get install tshark)")
            return False
        flt = CAPTURE_FILTER if not extra_filter else f"({CAPTURE_FILTER}) and ({extra_filter})"
        argv = [dumpcap, "-q", "-f", flt]
        for ifname in self.capture_interfaces:
            argv += ["-i", ifname]
        argv += ["-w", str(path), "--capture-comment", comment]
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        proc = await asyncio.create_subprocess_exec(
            *self.jp_lln.wrap(argv), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True)
        buf = b""
        try:
            async with asyncio.timeout(CAPTURE_START_TIMEOUT):
                while b"Capturing on" not in buf:
                    line = await proc.stderr.readline() if proc.stderr else b""
                    if not line:
                        break
                    buf += line
        except TimeoutError:
            pass
        if b"Capturing on" not in buf:
            _kill(proc)
            self.notes.append(f"dumpcap did not start: {buf.decode(errors='replace').strip()[-300:]}")
            return False
        self._capture, self._capture_path = proc, path
        return True

    async def stop_capture(self) -> None:
        proc = self._capture
        if proc is None:
            return
        self._capture = None
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(CAPTURE_STOP_TIMEOUT):
                err = await proc.stderr.read() if proc.stderr else b""
                await proc.wait()
            self.capture_stats = err.decode(errors="replace").strip()
        except TimeoutError:
            _kill(proc)
            self.notes.append("dumpcap did not stop in time and was killed; the capture may be cut short")


def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill a process we started, and its group (it was started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=CMD_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise TopologyError(f"timed out: {' '.join(argv)}") from exc
    if check and r.returncode != 0:
        raise TopologyError(f"failed ({r.returncode}): {' '.join(argv)}: {r.stderr.strip()}")
    return r


class NetnsTopology(Topology):
    """One namespace per host, veth links, a bridge for the pledges' link, netem on the pledge hop."""

    def __init__(self, n_pledges: int, loss: float = 0.0, delay_ms: float = 0.0, run_id: str = "") -> None:
        if not 1 <= n_pledges <= MAX_PLEDGES:
            raise ValueError(f"pledges must be 1..{MAX_PLEDGES}")
        rid = run_id or f"{os.getpid() % 100000}"
        self.prefix = f"{NS_PREFIX}{rid}-"
        pledges = [Endpoint(f"pledge{i}", f"{self.prefix}p{i}", eui64_link_local(pledge_mac(i)), HOST_IF,
                            mac=pledge_mac(i)) for i in range(1, n_pledges + 1)]
        super().__init__(
            "netns", pledges,
            Endpoint("jp", f"{self.prefix}jp", JP_LL, JP_LLN_IF, mac=JP_LLN_MAC),
            Endpoint("jp", f"{self.prefix}jp", JP_BB, JP_BB_IF, mac=JP_BB_MAC),
            Endpoint("registrar", f"{self.prefix}reg", REG_ADDR, HOST_IF, mac=REG_MAC),
            capture_interfaces=[JP_LLN_IF, JP_BB_IF],
        )
        self.loss = loss
        self.delay_ms = delay_ms
        self.impairment = ""
        self.created: list[str] = []

    @property
    def namespaces(self) -> list[str]:
        return [self.jp_lln.netns or "", self.registrar.netns or ""] + [p.netns or "" for p in self.pledges]

    def _ns(self, ns: str, *argv: str) -> None:
        _run(["ip", "netns", "exec", ns, *argv])

    def setup(self) -> None:
        jp, reg = self.jp_lln.netns or "", self.registrar.netns or ""
        for ns in self.namespaces:
            _run(["ip", "netns", "add", ns])
            self.created.append(ns)
            # Before any interface exists: no automatic link-local, no DAD, no RS/RA, so the only
            # addresses are ours and the only packets the onboarding's.
            self._ns(ns, "sysctl", "-q", "-w", "net.ipv6.conf.default.addr_gen_mode=1",
                     "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.default.dad_transmits=0",
                     "net.ipv6.conf.default.router_solicitations=0", "net.ipv6.conf.default.accept_ra=0",
                     "net.ipv6.conf.all.forwarding=0")
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # The pledges' link: a bridge in the JP namespace, one veth per pledge enslaved to it.
        _run(["ip", "-n", jp, "link", "add", JP_LLN_IF, "type", "bridge", "stp_state", "0",
              "mcast_snooping", "0"])
        _run(["ip", "-n", jp, "link", "set", JP_LLN_IF, "address", JP_LLN_MAC])
        for i, p in enumerate(self.pledges, 1):
            port = f"lp{i}"
            _run(["ip", "link", "add", port, "netns", jp, "type", "veth", "peer", "name", HOST_IF,
                  "netns", p.netns or ""])
            _run(["ip", "-n", jp, "link", "set", port, "master", JP_LLN_IF, "up"])
            _run(["ip", "-n", p.netns or "", "link", "set", HOST_IF, "address", p.mac, "up"])
            _run(["ip", "-n", p.netns or "", "-6", "addr", "add", f"{p.addr}/64", "dev", HOST_IF, "nodad"])
            _run(["ip", "-n", p.netns or "", "-6", "neigh", "add", JP_LL, "lladdr", JP_LLN_MAC, "dev", HOST_IF,
                  "nud", "permanent"])
            _run(["ip", "-n", jp, "-6", "neigh", "add", p.addr, "lladdr", p.mac, "dev", JP_LLN_IF,
                  "nud", "permanent"])
            if self.loss or self.delay_ms:
                self._impair(p, port)
        _run(["ip", "-n", jp, "link", "set", JP_LLN_IF, "up"])
        _run(["ip", "-n", jp, "-6", "addr", "add", f"{JP_LL}/64", "dev", JP_LLN_IF, "nodad"])
        # The backbone: JP <-> Registrar, routable addresses.
        _run(["ip", "link", "add", JP_BB_IF, "netns", jp, "type", "veth", "peer", "name", HOST_IF, "netns", reg])
        _run(["ip", "-n", jp, "link", "set", JP_BB_IF, "address", JP_BB_MAC, "up"])
        _run(["ip", "-n", reg, "link", "set", HOST_IF, "address", REG_MAC, "up"])
        _run(["ip", "-n", jp, "-6", "addr", "add", f"{JP_BB}/{BB_PREFIX_LEN}", "dev", JP_BB_IF, "nodad"])
        _run(["ip", "-n", reg, "-6", "addr", "add", f"{REG_ADDR}/{BB_PREFIX_LEN}", "dev", HOST_IF, "nodad"])
        _run(["ip", "-n", jp, "-6", "neigh", "add", REG_ADDR, "lladdr", REG_MAC, "dev", JP_BB_IF, "nud", "permanent"])
        _run(["ip", "-n", reg, "-6", "neigh", "add", JP_BB, "lladdr", JP_BB_MAC, "dev", HOST_IF, "nud", "permanent"])
        self.jp_lln.ifindex = _ifindex(jp, JP_LLN_IF)
        self.jp_bb.ifindex = _ifindex(jp, JP_BB_IF)
        for p in self.pledges:
            p.ifindex = _ifindex(p.netns or "", HOST_IF)
        if self.loss or self.delay_ms:
            how = ("tc netem" if self.impairment == "netem" else
                   "nftables random drops at both ends' ingress (no sch_netem in this kernel)")
            self.notes.append(f"impairment on the pledge hop, both directions, by {how}: loss {self.loss:g}%"
                              + (f", delay {self.delay_ms:g} ms" if self.delay_ms else ""))

    def _impair(self, p: Endpoint, port: str) -> None:
        """Loss (and delay) on one pledge's link: tc netem when the kernel has it, else nftables."""
        jp, ns = self.jp_lln.netns or "", p.netns or ""
        if self.impairment in ("", "netem"):
            netem = ["netem"]
            if self.delay_ms:
                netem += ["delay", f"{self.delay_ms:g}ms"]
            if self.loss:
                netem += ["loss", f"{self.loss:g}%"]
            r = _run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", HOST_IF, "root", *netem], check=False)
            if r.returncode == 0:
                # Both directions of the radio hop: pledge egress and the bridge port toward it.
                self._ns(jp, "tc", "qdisc", "add", "dev", port, "root", *netem)
                self.impairment = "netem"
                return
            if self.impairment == "netem" or self.delay_ms:
                raise TopologyError(f"tc netem unavailable ({r.stderr.strip()}); --delay needs it")
        if shutil.which("nft") is None:
            raise TopologyError("neither tc netem (sch_netem) nor nftables is available for --loss")
        # Silent random drops at the ingress of each end of the radio hop (netdev hooks: the sender
        # sees no error, as on air): what a pledge sends is lost before the JP's capture sees it,
        # what the JP sends is captured on lln0 and lost on the way in.
        permille = round(self.loss * 10)
        for where, dev in ((ns, HOST_IF), (jp, port)):
            chain = f"rx{dev}"
            if _run(["ip", "netns", "exec", where, "nft", "list", "table", "netdev", "jplab"],
                    check=False).returncode != 0:
                self._ns(where, "nft", "add", "table", "netdev", "jplab")
            self._ns(where, "nft", "add", "chain", "netdev", "jplab", chain,
                     f"{{ type filter hook ingress device {dev} priority 0; }}")
            self._ns(where, "nft", "add", "rule", "netdev", "jplab", chain, "ip6", "nexthdr", "udp",
                     "numgen", "random", "mod", "1000", "<", str(permille), "drop")
        self.impairment = "nft"

    def teardown(self) -> None:
        for ns in reversed(self.created):
            _kill_namespace_processes(ns)
            _run(["ip", "netns", "del", ns], check=False)
        self.created.clear()


def _ifindex(ns: str, ifname: str) -> int:
    r = _run(["ip", "-n", ns, "-j", "link", "show", "dev", ifname])
    return int(json.loads(r.stdout)[0]["ifindex"])


def _kill_namespace_processes(ns: str) -> None:
    """Processes still inside a namespace we made (ours: nothing else runs there) keep it alive."""
    r = _run(["ip", "netns", "pids", ns], check=False)
    for tok in r.stdout.split():
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(tok), signal.SIGKILL)


def remove_stale() -> list[str]:
    """Delete namespaces left by killed runs (only ours: the name prefix)."""
    gone = []
    for ns in stale_namespaces():
        _kill_namespace_processes(ns)
        if _run(["ip", "netns", "del", ns], check=False).returncode == 0:
            gone.append(ns)
    return gone


#: Loopback mode: every listening port is shifted by this so nothing collides with the system's.
LOOPBACK_PORT_OFFSET = 20000


class LoopbackTopology(Topology):
    """Everything on ``::1``; the hops differ only by port. The fallback without root/namespaces."""

    def __init__(self, n_pledges: int, reason: str) -> None:
        if not 1 <= n_pledges <= MAX_PLEDGES:
            raise ValueError(f"pledges must be 1..{MAX_PLEDGES}")
        lo = "::1"
        super().__init__(
            "loopback", [Endpoint(f"pledge{i}", None, lo, "lo", 1) for i in range(1, n_pledges + 1)],
            Endpoint("jp", None, lo, "lo", 1), Endpoint("jp", None, lo, "lo", 1),
            Endpoint("registrar", None, lo, "lo", 1), port_offset=LOOPBACK_PORT_OFFSET,
            capture_interfaces=["lo"],
        )
        self.notes.append(
            f"loopback fallback ({reason}): all hosts on ::1 with distinct ports, one capture interface, "
            "no link-local hop, no netem")

    def setup(self) -> None:
        return None

    def teardown(self) -> None:
        return None
