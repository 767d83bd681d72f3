"""``jpdissect lab``: real pledges, a real Join Proxy and a real Registrar on this machine, recorded.

The cryptography is done by real stacks -- ``openssl s_client``/``s_server -dtls1_2``, python-mbedtls,
aiocoap with OSCORE -- and the relay framing by the Join Proxy (:mod:`.joinproxy`) and the
Registrar-side relay endpoints (:mod:`.registrar`) of this project, both asyncio. :mod:`.topology`
builds the network (one namespace per host, veth links, dumpcap on both Join Proxy interfaces, netem),
:mod:`.pledges` runs the pledges, :mod:`.runner` ties one run together and :mod:`.cli` is the
``jpdissect lab`` sub-command.
"""

from __future__ import annotations

#: The relay schemes the lab can run (DESIGN.md §1), in the order ``--scheme all`` runs them.
SCHEMES: tuple[str, ...] = ("stateful", "jpy", "jpy-legacy", "coap-dtls", "thread-relay", "cojp")

__all__ = ["SCHEMES"]
