"""IEEE 802.15.4 MAC (``wpan``), its TAP and non-ASK PHY encapsulations, and Thread MAC security.

Frames come from link types 195 (PSDU with FCS), 230 (no FCS), 283 (TAP: TLV header with channel,
RSSI, LQI, FCS type, then the PSDU) and 215 (non-ASK PHY: preamble, SFD, PHR, PSDU). The MAC header
layout follows IEEE 802.15.4-2015 §7.2 for frame versions 0/1 (2003/2006) and 2 (2015, with the
PAN ID Compression table 7-2 and Information Elements §7.4).

Secured frames (§9) are decrypted with AES-CCM* when a key can be found: the Thread MAC key derived
from ``-o thread.network_key`` (Key ID Mode 1/2), a Joiner Router KEK (Key ID Mode 0, from
``-o thread.kek`` or learned by the join-proxy dissector), or a plain ``-o wpan.key``. The nonce
needs the sender's extended address; a sender using its short address is resolved through the
capture-wide (PAN, short) -> extended map that MLE and association responses fill, as Wireshark
does. Any failure (no key, no extended address, MIC mismatch) is an expert note and the payload is
shown as data; the frame is always listed.

Upper layers read :class:`WpanInfo` from ``pkt.scratch["wpan"]`` (addresses, PAN, security
parameters) -- the role of Wireshark's ``ieee802154_hints_t``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

from jpdissect import thread_keys as tk
from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.model import (
    FT,
    Base,
    F,
    Group,
    Layer,
    Node,
    Packet,
    Pref,
    Protocol,
    Severity,
    declare_prefs,
)

# ---------------------------------------------------------------------------
# Limits and constants

#: aMaxPhyPacketSize for the 2.4 GHz O-QPSK PHY; SUN PHYs allow 2047 (§11.3). Larger frames are
#: still dissected, but flagged.
MAX_PSDU_LEN = 2047
#: Header IEs / payload IEs walked per frame before we call the list malformed.
MAX_IES = 64
#: MLME sub-IEs walked inside one MLME payload IE.
MAX_SUB_IES = 64
#: Entries kept in the (PAN, short) -> extended address map; a capture with more nodes than
#: this is not a single Thread network and the oldest entries are dropped.
MAX_ADDR_MAP = 65536
BROADCAST_SHORT = 0xFFFF
BROADCAST_PAN = 0xFFFF

FCS_CRC16 = "ITU-T CRC-16"
FCS_CRC32 = "ITU-T CRC-32"
FCS_CC24XX = "TI CC24xx metadata"
_FCS_ALIASES = {
    "itu-t crc-16": FCS_CRC16, "crc16": FCS_CRC16, "16": FCS_CRC16,
    "itu-t crc-32": FCS_CRC32, "crc32": FCS_CRC32, "32": FCS_CRC32,
    "ti cc24xx metadata": FCS_CC24XX, "tt24xx": FCS_CC24XX, "cc24xx": FCS_CC24XX,
}

# Frame types (Table 7-1)
FT_BEACON, FT_DATA, FT_ACK, FT_CMD, FT_RESERVED, FT_MULTIPURPOSE, FT_FRAK, FT_EXTENDED = range(8)
FRAME_TYPES = {
    0: "Beacon", 1: "Data", 2: "Ack", 3: "Command", 4: "Reserved", 5: "Multipurpose",
    6: "Fragment or Frak", 7: "Extended",
}
ADDR_NONE, ADDR_RESERVED, ADDR_SHORT, ADDR_EXT = range(4)
ADDR_MODES = {0: "None", 1: "Reserved", 2: "Short/16-bit", 3: "Long/64-bit"}
VERSIONS = {0: "IEEE Std 802.15.4-2003", 1: "IEEE Std 802.15.4-2006", 2: "IEEE Std 802.15.4-2015", 3: "Reserved"}
KEY_ID_MODES = {
    0: "Implicit Key", 1: "Indexed Key using the Default Key Source",
    2: "Explicit Key with 4-octet Key Source", 3: "Explicit Key with 8-octet Key Source",
}
SEC_LEVELS = tk.SECURITY_LEVEL_NAMES

HEADER_IE_NAMES = {
    0x00: "Vendor Specific IE", 0x1A: "CSL IE", 0x1B: "RIT IE", 0x1C: "DSME PAN Descriptor IE",
    0x1D: "Rendezvous Time IE", 0x1E: "Time Correction IE", 0x21: "Extended DSME PAN Descriptor IE",
    0x22: "Fragment Sequence Context Description IE", 0x23: "Simplified Superframe Specification IE",
    0x24: "Simplified GTS Specification IE", 0x25: "LECIM Capabilities IE", 0x26: "TRLE Descriptor IE",
    0x27: "RCC Capabilities IE", 0x28: "RCCN Descriptor IE", 0x29: "Global Time IE", 0x2A: "Omni IE",
    0x2B: "DA IE", 0x7E: "Header Termination 1 IE", 0x7F: "Header Termination 2 IE",
}
PAYLOAD_IE_NAMES = {
    0x0: "ESDU IE", 0x1: "MLME IE", 0x2: "Vendor Specific IE", 0x3: "MPX IE", 0x4: "Omni IE",
    0x5: "IETF IE", 0xF: "Payload Termination IE",
}
HIE_VENDOR, HIE_CSL, HIE_RENDEZVOUS, HIE_TIME_CORRECTION, HIE_GLOBAL_TIME = 0x00, 0x1A, 0x1D, 0x1E, 0x29
HIE_HT1, HIE_HT2 = 0x7E, 0x7F
PIE_MLME, PIE_VENDOR, PIE_TERMINATION = 0x1, 0x2, 0xF
MLME_TSCH_SYNC = 0x1A

CMD_NAMES = {
    0x01: "Association Request", 0x02: "Association Response", 0x03: "Disassociation Notification",
    0x04: "Data Request", 0x05: "PAN ID Conflict", 0x06: "Orphan Notification",
    0x07: "Beacon Request", 0x08: "Coordinator Realignment", 0x09: "GTS Request",
    0x0A: "TRLE Management Request", 0x0B: "TRLE Management Response",
    0x13: "DSME Association Request", 0x14: "DSME Association Response",
    0x15: "DSME GTS Request", 0x16: "DSME GTS Response", 0x17: "DSME GTS Notify",
    0x18: "DSME Information Request", 0x19: "DSME Information Response",
    0x1A: "DSME Beacon Allocation Notification", 0x1B: "DSME Beacon Collision Notification",
    0x1C: "DSME Link Report", 0x20: "RIT Data Request", 0x21: "DBS Request", 0x22: "DBS Response",
    0x23: "RIT Data Response", 0x24: "Vendor Specific",
}
ASSOC_STATUS = {0x00: "Association Successful", 0x01: "PAN at Capacity", 0x02: "PAN Access Denied"}
DISASSOC_REASON = {0x01: "Coordinator requests device to leave", 0x02: "Device wishes to leave"}

TAP_FCS_TYPES = {0: "None", 1: "ITU-T CRC16", 2: "ITU-T CRC32"}
TAP_TLV_NAMES = {
    0: "FCS type", 1: "Received Signal Strength", 2: "Bit rate", 3: "Channel assignment",
    4: "SUN PHY Information", 5: "Start of frame timestamp", 6: "End of frame timestamp",
    7: "Absolute Slot Number (ASN)", 8: "Start of slot timestamp", 9: "Timeslot length",
    10: "Link Quality Indicator", 11: "Channel center frequency", 12: "Channel plan",
}

# ---------------------------------------------------------------------------
# Declarations

P = Protocol("wpan", "IEEE 802.15.4 Low-Rate Wireless PAN", "IEEE 802.15.4")
_B = FT.BOOLEAN
_H = Base.HEX
FW = P.declare(
    F("wpan.frame_length", "Frame Length", FT.UINT8, "PSDU length without the FCS"),
    F("wpan.fcf", "Frame Control Field", FT.UINT16, base=_H),
    F("wpan.frame_type", "Frame Type", FT.UINT16, base=_H, strings=FRAME_TYPES),
    F("wpan.security", "Security Enabled", _B),
    F("wpan.pending", "Frame Pending", _B),
    F("wpan.ack_request", "Acknowledge Request", _B),
    F("wpan.pan_id_compression", "PAN ID Compression", _B),
    F("wpan.fcf.reserved", "Reserved", _B),
    F("wpan.seqno_suppression", "Sequence Number Suppression", _B),
    F("wpan.ie_present", "Information Elements Present", _B),
    F("wpan.dst_addr_mode", "Destination Addressing Mode", FT.UINT16, base=_H, strings=ADDR_MODES),
    F("wpan.version", "Frame Version", FT.UINT16, strings=VERSIONS),
    F("wpan.src_addr_mode", "Source Addressing Mode", FT.UINT16, base=_H, strings=ADDR_MODES),
    F("wpan.long_frame_control", "Long Frame Control", _B),
    F("wpan.pan_id_present", "PAN ID Present", _B),
    F("wpan.mpf_version", "Multipurpose Frame Version", FT.UINT16),
    F("wpan.seq_no", "Sequence Number", FT.UINT8),
    F("wpan.dst_pan", "Destination PAN", FT.UINT16, base=_H),
    F("wpan.dst16", "Destination", FT.UINT16, base=_H),
    F("wpan.dst64", "Destination", FT.EUI64),
    F("wpan.src_pan", "Source PAN", FT.UINT16, base=_H),
    F("wpan.src16", "Source", FT.UINT16, base=_H),
    F("wpan.src64", "Extended Source", FT.EUI64),
    F("wpan.addr16", "Address", FT.UINT16, "Source or destination short address", base=_H),
    F("wpan.addr64", "Extended Address", FT.EUI64, "Source or destination extended address"),
    F("wpan.src64.origin", "Origin", FT.FRAMENUM, "Frame the short->extended mapping was learned from"),
    F("wpan.fcs", "FCS", FT.UINT16, base=_H),
    F("wpan.fcs32", "FCS", FT.UINT32, base=_H),
    F("wpan.fcs_ok", "FCS Valid", _B),
    F("wpan.rssi", "RSSI", FT.INT32, unit="dB"),
    F("wpan.correlation", "LQI Correlation Value", FT.UINT8),
    # Auxiliary security header (§9.4)
    F("wpan.aux_sec.hdr", "Auxiliary Security Header", FT.NONE),
    F("wpan.aux_sec.security_control_field", "Security Control Field", FT.UINT8, base=_H),
    F("wpan.aux_sec.sec_level", "Security Level", FT.UINT8, base=_H, strings=SEC_LEVELS),
    F("wpan.aux_sec.key_id_mode", "Key Identifier Mode", FT.UINT8, base=_H, strings=KEY_ID_MODES),
    F("wpan.aux_sec.frame_counter_suppression", "Frame Counter Suppression", _B),
    F("wpan.aux_sec.asn_in_nonce", "ASN in Nonce", _B),
    F("wpan.aux_sec.reserved", "Reserved", FT.UINT8, base=_H),
    F("wpan.aux_sec.frame_counter", "Frame Counter", FT.UINT32),
    F("wpan.aux_sec.key_source", "Key Source", FT.UINT64, base=_H),
    F("wpan.aux_sec.key_source.bytes", "Key Source", FT.BYTES),
    F("wpan.aux_sec.key_index", "Key Index", FT.UINT8, base=_H),
    F("wpan.mic", "MIC", FT.BYTES),
    F("wpan.key_number", "Key Number", FT.UINT8,
      "Configured key that verified the MIC, counting thread.network_key, wpan.key, thread.kek, "
      "then learned KEKs (like rows of Wireshark's key table)"),
    F("wpan.sec_frame_counter", "Frame Counter", FT.UINT32, base=_H),
    F("wpan.sec_key_sequence_counter", "Key Sequence Counter", FT.UINT8, base=_H),
    F("wpan.decrypt_error", "Decryption error", FT.NONE),
    # Information elements (§7.4)
    F("wpan.header_ie", "Header IEs", FT.NONE),
    F("wpan.header_ie_tlv", "IE Header", FT.UINT16, base=_H),
    F("wpan.header_ie.type", "Type", FT.UINT16),
    F("wpan.header_ie.id", "Id", FT.UINT16, base=_H, strings=HEADER_IE_NAMES),
    F("wpan.header_ie.length", "Length", FT.UINT16),
    F("wpan.header_ie.ht1", "Header Termination 1 IE (Payload IEs follow)", FT.NONE),
    F("wpan.header_ie.ht2", "Header Termination 2 IE (Payload follows)", FT.NONE),
    F("wpan.header_ie.unsupported", "Unsupported Header IE", FT.NONE),
    F("wpan.header_ie.time_correction", "Time Correction IE", FT.NONE),
    F("wpan.header_ie.time_correction.time_sync_info", "Time Sync Info", FT.UINT16, base=_H),
    F("wpan.nack", "Nack", _B),
    F("wpan.header_ie.time_correction.value", "Time Correction", FT.INT32, unit="us"),
    F("wpan.header_ie.csl", "CSL IE", FT.NONE),
    F("wpan.header_ie.csl.phase", "Phase", FT.INT32),
    F("wpan.header_ie.csl.period", "Period", FT.INT32),
    F("wpan.header_ie.csl.rendezvous_time", "Rendezvous Time", FT.INT32),
    F("wpan.header_ie.rdv", "Rendezvous Time IE", FT.NONE),
    F("wpan.header_ie.csl.wakeup_interval", "Wake-up Interval", FT.INT32),
    F("wpan.header_ie.global_time", "Global Time IE", FT.NONE),
    F("wpan.header_ie.global_time.value", "Global Time", FT.ABSTIME),
    F("wpan.header_ie.vendor_specific", "Vendor Specific IE", FT.NONE),
    F("wpan.header_ie.vendor_specific.vendor_oui", "Vendor OUI", FT.UINT24, "OUI as a number, like tshark"),
    F("wpan.header_ie.vendor_specific.content", "Vendor Content", FT.BYTES),
    F("wpan.ie.unknown_content", "Unknown Content", FT.BYTES),
    F("wpan.payload_ie", "Payload IEs", FT.NONE),
    F("wpan.payload_ie_tlv", "IE Header", FT.UINT16, base=_H),
    F("wpan.payload_ie.type", "Type", FT.UINT16),
    F("wpan.payload_ie.id", "Id", FT.UINT16, base=_H, strings=PAYLOAD_IE_NAMES),
    F("wpan.payload_ie.length", "Length", FT.UINT16),
    F("wpan.payload_ie.unknown", "Unknown Payload IE", FT.NONE),
    F("wpan.payload_ie.termination", "Payload Termination IE", FT.NONE),
    F("wpan.payload_ie.vendor", "Vendor Specific IE", FT.NONE),
    F("wpan.payload_ie.vendor.oui", "Vendor OUI", FT.UINT24, "OUI as a number, like tshark"),
    F("wpan.mlme", "MLME IE", FT.NONE),
    F("wpan.mlme.ie", "MLME Sub IE", FT.UINT16, base=_H),
    F("wpan.mlme.ie.type", "Type", FT.UINT16),
    F("wpan.mlme.ie.id", "Sub ID", FT.UINT16, base=_H),
    F("wpan.mlme.ie.length", "Length", FT.UINT16),
    F("wpan.mlme.data", "Data", FT.BYTES),
    F("wpan.tsch.time_sync", "TSCH Synchronization IE", FT.NONE),
    F("wpan.tsch.asn", "Absolute Slot Number", FT.UINT64),
    F("wpan.tsch.join_metric", "Join Metric", FT.UINT8),
    # MAC commands (§7.5)
    F("wpan.cmd", "Command Identifier", FT.UINT8, base=_H, strings=CMD_NAMES),
    F("wpan.cmd.vendor_oui", "Vendor OUI", FT.UINT24, "OUI as a number, like tshark"),
    F("wpan.cinfo.alt_coord", "Alternate PAN Coordinator", _B),
    F("wpan.cinfo.device_type", "Device Type", _B),
    F("wpan.cinfo.power_src", "Power Source", _B),
    F("wpan.cinfo.idle_rx", "Receive On When Idle", _B),
    F("wpan.cinfo.sec_capable", "Security Capability", _B),
    F("wpan.cinfo.alloc_addr", "Allocate Address", _B),
    F("wpan.asoc.addr", "Short Address", FT.UINT16, base=_H),
    F("wpan.assoc.status", "Association Status", FT.UINT8, base=_H, strings=ASSOC_STATUS),
    F("wpan.disassoc.reason", "Disassociation Reason", FT.UINT8, base=_H, strings=DISASSOC_REASON),
    F("wpan.realign.pan", "PAN ID", FT.UINT16, base=_H),
    F("wpan.realign.addr", "Coordinator Short Address", FT.UINT16, base=_H),
    F("wpan.realign.channel", "Logical Channel", FT.UINT8),
    F("wpan.realign.channel_page", "Channel Page", FT.UINT8),
    F("wpan.gtsreq.length", "GTS Length", FT.UINT8),
    F("wpan.gtsreq.direction", "GTS Direction", _B),
    F("wpan.gtsreq.type", "Characteristic Type", _B),
    # Beacon (§7.3.1)
    F("wpan.beacon_order", "Beacon Interval", FT.UINT16),
    F("wpan.superframe_order", "Superframe Interval", FT.UINT16),
    F("wpan.cap", "Final CAP Slot", FT.UINT16),
    F("wpan.battery_ext", "Battery Extension", _B),
    F("wpan.bcn_coord", "PAN Coordinator", _B),
    F("wpan.assoc_permit", "Association Permit", _B),
    F("wpan.gts.count", "GTS Descriptor Count", FT.UINT8),
    F("wpan.gts.permit", "GTS Permit", _B),
    F("wpan.gts.direction", "Direction", _B),
    F("wpan.gts.address", "Address", FT.UINT16, base=_H),
    F("wpan.pending16", "Address", FT.UINT16, base=_H),
    F("wpan.pending64", "Address", FT.EUI64),
)

P_TAP = Protocol("wpan-tap", "IEEE 802.15.4 Low-Rate Wireless PAN TAP", "IEEE 802.15.4 TAP")
FT_TAP = P_TAP.declare(
    F("wpan-tap.version", "Version", FT.UINT8),
    F("wpan-tap.reserved", "Reserved", FT.UINT8),
    F("wpan-tap.length", "Length", FT.UINT16),
    F("wpan-tap.data_length", "Data Length", FT.UINT16),
    F("wpan-tap.tlv.type", "TLV Type", FT.UINT16, strings=TAP_TLV_NAMES),
    F("wpan-tap.tlv.length", "TLV Length", FT.UINT16),
    F("wpan-tap.tlv.unknown", "Unknown", FT.BYTES),
    F("wpan-tap.tlv.padding", "Padding", FT.BYTES),
    F("wpan-tap.fcs_type", "FCS Type", FT.UINT8, strings=TAP_FCS_TYPES),
    F("wpan-tap.rss", "RSS", FT.DOUBLE, unit="dBm"),
    F("wpan-tap.ch_num", "Channel", FT.UINT16),
    F("wpan-tap.ch_page", "Page", FT.UINT8),
    F("wpan-tap.bit_rate", "Bit Rate", FT.UINT32, unit="bit/s"),
    F("wpan-tap.sun_band", "Band", FT.UINT8),
    F("wpan-tap.sun_type", "Type", FT.UINT8),
    F("wpan-tap.sun_mode", "Mode", FT.UINT8),
    F("wpan-tap.sof_ts", "Start of frame timestamp", FT.UINT64, unit="ns"),
    F("wpan-tap.eof_ts", "End of frame timestamp", FT.UINT64, unit="ns"),
    F("wpan-tap.asn", "ASN", FT.UINT64),
    F("wpan-tap.slot_start_ts", "Start of slot timestamp", FT.UINT64, unit="ns"),
    F("wpan-tap.timeslot_length", "Timeslot length", FT.UINT32, unit="us"),
    F("wpan-tap.lqi", "Link Quality Indicator", FT.UINT8),
    F("wpan-tap.ch_freq", "Frequency", FT.DOUBLE, unit="kHz"),
    F("wpan-tap.chplan.start", "Channel0 freq", FT.DOUBLE, unit="kHz"),
    F("wpan-tap.chplan.spacing", "Spacing", FT.DOUBLE, unit="kHz"),
    F("wpan-tap.chplan.channels", "Channels", FT.UINT16),
)

P_NONASK = Protocol("wpan-nonask-phy", "IEEE 802.15.4 Low-Rate Wireless PAN non-ASK PHY",
                    "IEEE 802.15.4 non-ASK PHY")
FNA = P_NONASK.declare(
    F("wpan-nonask-phy.preamble", "Preamble", FT.UINT32, base=_H),
    F("wpan-nonask-phy.sfd", "Start of Frame Delimiter", FT.UINT8, base=_H),
    F("wpan-nonask-phy.frame_length", "Frame Length", FT.UINT8),
)

# Thread beacon payload (Thread 1.1 §4.5.1.1; Wireshark's thread_bcn).
P_TBCN = Protocol("thread_bcn", "Thread Beacon", "Thread")
FTB = P_TBCN.declare(
    F("thread_bcn.protocol", "Protocol ID", FT.UINT8),
    F("thread_bcn.joining", "Joining", _B),
    F("thread_bcn.native", "Native", _B),
    F("thread_bcn.version", "Version", FT.UINT8),
    F("thread_bcn.network_name", "Network Name", FT.STRING),
    F("thread_bcn.epid", "Extended PAN ID", FT.EUI64),
    F("thread_bcn.tlv", "TLV", FT.NONE),
    F("thread_bcn.tlv.type", "Type", FT.UINT8, strings={8: "Steering Data"}),
    F("thread_bcn.tlv.len", "Length", FT.UINT8),
    F("thread_bcn.tlv.steering_data", "Steering Data", FT.BYTES),
    F("thread_bcn.tlv.unknown", "Unknown", FT.BYTES),
)
THREAD_BEACON_PROTOCOL_ID = 3
THREAD_BEACON_MIN_LEN = 2 + 16 + 8


class _ChoicePref(Pref):
    """An enumerated preference that, like tshark, accepts names case-insensitively."""

    def parse(self, text: str) -> Any:
        v = _FCS_ALIASES.get(text.strip().lower())
        if v is None:
            raise ValueError(f"{text!r} is not one of {', '.join(self.choices)}")
        return v


declare_prefs(
    Pref("thread.network_key", bytes, b"",
         "Thread network key (16 bytes hex); MAC and MLE keys are derived from it (Thread hash)"),
    Pref("thread.key_sequence", int, -1,
         "Thread key sequence used to expand 7-bit MAC key indexes; -1 = learn it from MLE key "
         "sources (Key ID Mode 2), starting at 0"),
    Pref("thread.kek", bytes, b"",
         "Joiner Router KEK (16 bytes hex) for the Key ID Mode 0 frames of a join (JOIN_ENT); also "
         "learned from a decoded c/tx Joiner Router KEK TLV"),
    Pref("wpan.key", bytes, b"", "A plain IEEE 802.15.4 AES-128 key used as is (no Thread hash)"),
    _ChoicePref("wpan.fcs_format", str, FCS_CRC16, "The FCS format in the captured payload (link type 195)",
                (FCS_CC24XX, FCS_CRC16, FCS_CRC32)),
    Pref("wpan.802154_fcs_ok", bool, True, "Dissect payload only if FCS is valid"),
)


# ---------------------------------------------------------------------------
# What upper layers read


@dataclass(slots=True)
class AuxSec:
    """A parsed auxiliary security header (§9.4); MLE reuses it for its own header."""

    level: int = 0
    key_id_mode: int = 0
    fc_suppressed: bool = False
    asn_in_nonce: bool = False
    frame_counter: int | None = None
    key_source: int | None = None
    key_source_len: int = 0
    key_index: int | None = None
    length: int = 0


@dataclass(slots=True)
class WpanInfo:
    """The MAC header facts later layers need (6LoWPAN IIDs, MLE nonce, reassembly keys)."""

    frame_type: int
    version: int
    security: bool
    dst_mode: int = 0
    src_mode: int = 0
    dst_pan: int | None = None
    src_pan: int | None = None  # effective: the destination PAN when compressed
    dst16: int | None = None
    dst64: bytes | None = None
    src16: int | None = None
    src64: bytes | None = None
    src64_learned: bytes | None = None  # from the short->extended map
    aux: AuxSec | None = None
    fcs_ok: bool = True
    decrypted: bool = False
    header_ok: bool = True  # False: the MAC header was invalid or cut short

    @property
    def sender_ext(self) -> bytes | None:
        return self.src64 if self.src64 is not None else self.src64_learned

    def dl_src(self) -> bytes | None:
        """Link-layer source as bytes: 8 (EUI-64) or 2 (short, big endian)."""
        if self.src64 is not None:
            return self.src64
        if self.src16 is not None:
            return self.src16.to_bytes(2, "big")
        return None

    def dl_dst(self) -> bytes | None:
        if self.dst64 is not None:
            return self.dst64
        if self.dst16 is not None:
            return self.dst16.to_bytes(2, "big")
        return None


# ---------------------------------------------------------------------------
# Capture-wide address map (what Wireshark calls ieee802154_map)

_MAP = "wpan.addr_map"


def learn_short_address(cap: Any, pan: int | None, short: int, ext: bytes, frame: int) -> None:
    """Record that ``short`` in ``pan`` belongs to ``ext`` (MLE Source Address / Address16 TLVs,
    association responses). The first frame that established a mapping stays its origin."""
    if pan is None or short >= 0xFFFE or len(ext) != 8:
        return
    amap: dict[tuple[int, int], tuple[bytes, int]] = cap.state.setdefault(_MAP, {})
    key = (pan, short)
    old = amap.get(key)
    if old is not None and old[0] == ext:
        return
    if old is None and len(amap) >= MAX_ADDR_MAP:
        amap.pop(next(iter(amap)))
    amap[key] = (bytes(ext), frame)


def lookup_short_address(cap: Any, pan: int | None, short: int) -> tuple[bytes, int] | None:
    if pan is None:
        return None
    amap = cap.state.get(_MAP)
    if not amap:
        return None
    return amap.get((pan, short))


def fmt_short(a: int) -> str:
    return "Broadcast" if a == BROADCAST_SHORT else f"0x{a:04x}"


def fmt_eui64(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


# ---------------------------------------------------------------------------
# FCS


def _crc16_table() -> list[int]:
    tab = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x8408 if c & 1 else c >> 1
        tab.append(c)
    return tab


_CRC16_TAB = _crc16_table()


def crc16_itu(data: bytes) -> int:
    """IEEE 802.15.4 FCS (§7.2.10): ITU-T CRC-16, bit-reflected, initial value 0 (CRC-16/KERMIT)."""
    crc = 0
    tab = _CRC16_TAB
    for b in data:
        crc = (crc >> 8) ^ tab[(crc ^ b) & 0xFF]
    return crc


def crc32_itu(data: bytes) -> int:
    """The 32-bit FCS of SUN PHYs (§7.2.10): the IEEE 802.3 CRC-32."""
    return zlib.crc32(data) & 0xFFFFFFFF


# ---------------------------------------------------------------------------
# Entry points


@dissector("wpan", "IEEE 802.15.4 frame with an FCS (format from wpan.fcs_format)")
def dissect_wpan(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    fmt = pkt.cap.pref("wpan.fcs_format") if pkt.cap is not None else FCS_CRC16
    if fmt == FCS_CRC32:
        return dissect_mac(pkt, buf, off, end, src, 4, "crc32")
    if fmt == FCS_CC24XX:
        return dissect_mac(pkt, buf, off, end, src, 2, "cc24xx")
    return dissect_mac(pkt, buf, off, end, src, 2, "crc16")


@dissector("wpan_nofcs", "IEEE 802.15.4 frame without FCS")
def dissect_wpan_nofcs(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    return dissect_mac(pkt, buf, off, end, src, 0, "")


@dissector("wpan_cc24xx", "IEEE 802.15.4 frame with TI CC24xx metadata instead of an FCS")
def dissect_wpan_cc24xx(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    return dissect_mac(pkt, buf, off, end, src, 2, "cc24xx")


@dissector("wpan-nonask-phy", "IEEE 802.15.4 with non-ASK PHY header (preamble, SFD, PHR)")
def dissect_nonask_phy(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    lay = pkt.add_layer(P_NONASK, off, min(6, end - off), src)
    if end - off < 6:
        pkt.malformed(lay, "IEEE 802.15.4-2015 §10: non-ASK PHY header needs preamble, SFD and PHR", off)
        return True
    lay.add(FNA.preamble, struct.unpack_from("<I", buf, off)[0], off, 4)
    lay.add(FNA.sfd, buf[off + 4], off + 4, 1)
    phr = buf[off + 5] & 0x7F
    lay.add(FNA.frame_length, phr, off + 5, 1)
    mac_end = min(end, off + 6 + phr)
    if off + 6 + phr > end:
        pkt.expert(lay, Severity.WARN, Group.MALFORMED,
                   f"PHR frame length {phr} exceeds the {end - off - 6} captured bytes", off + 5, 1)
    return dissect_mac(pkt, buf, off + 6, mac_end, src, 2, "crc16")


@dissector("wpan-tap", "IEEE 802.15.4 TAP: TLV metadata (channel, RSS, LQI, FCS type) then the frame")
def dissect_tap(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    """IEEE 802.15.4 TAP (LINKTYPE_IEEE802_15_4_TAP, 283): ``version(1)=0 reserved(1) length(2, LE)``
    then TLVs ``type(2, LE) length(2, LE) value`` padded to 4 bytes, then the PSDU."""
    n = end - off
    if n < 4 or buf[off] != 0:
        lay = pkt.add_layer(P_TAP, off, n, src)
        pkt.malformed(lay, "IEEE 802.15.4 TAP: header needs 4 bytes and version 0", off)
        return pkt.cap.call_data(pkt, buf, off + min(n, 4), end, src) if n > 4 else True
    hlen = struct.unpack_from("<H", buf, off + 2)[0]
    lay = pkt.add_layer(P_TAP, off, min(hlen, n), src)
    lay.add(FT_TAP.version, 0, off, 1)
    lay.add(FT_TAP.reserved, buf[off + 1], off + 1, 1)
    lay.add(FT_TAP.length, hlen, off + 2, 2)
    if hlen < 4 or hlen > n:
        pkt.malformed(lay, f"IEEE 802.15.4 TAP: header length {hlen} outside 4..{n}", off + 2, 2)
        return True
    fcs_type = 1  # the TAP specification's default when no FCS Type TLV is present
    p = off + 4
    tend = off + hlen
    count = 0
    while p + 4 <= tend:
        count += 1
        if count > MAX_IES * 4:
            pkt.malformed(lay, "IEEE 802.15.4 TAP: too many TLVs", p)
            break
        ttype, tlen = struct.unpack_from("<HH", buf, p)
        v = p + 4
        padded = (tlen + 3) & ~3
        if v + tlen > tend:
            pkt.malformed(lay, f"IEEE 802.15.4 TAP: TLV {ttype} length {tlen} runs past the header", p + 2, 2)
            break
        tn = lay.add(FT_TAP.tlv_type, ttype, p, 2)
        tn.add(FT_TAP.tlv_length, tlen, p + 2, 2)
        fcs_type = _tap_tlv(pkt, tn, buf, v, tlen, ttype, fcs_type)
        if padded > tlen and v + padded <= tend:
            tn.add(FT_TAP.tlv_padding, buf[v + tlen : v + padded], v + tlen, padded - tlen)
        p = v + padded
    data_len = end - tend
    lay.add(FT_TAP.data_length, data_len, 0, 0, generated=True)
    if pkt.tree:
        lay.label = "IEEE 802.15.4 TAP"
    fcs_len = {0: 0, 1: 2, 2: 4}.get(fcs_type)
    if fcs_len is None:
        pkt.malformed(lay, f"IEEE 802.15.4 TAP: invalid FCS type {fcs_type}")
        return pkt.cap.call_data(pkt, buf, tend, end, src)
    return dissect_mac(pkt, buf, tend, end, src, fcs_len, "crc32" if fcs_len == 4 else "crc16" if fcs_len else "")


def _tap_tlv(pkt: Packet, tn: Node, buf: bytes, v: int, tlen: int, ttype: int, fcs_type: int) -> int:
    want = {0: 1, 1: 4, 2: 4, 3: 3, 4: 3, 5: 8, 6: 8, 7: 8, 8: 8, 9: 4, 10: 1, 11: 4, 12: 10}.get(ttype)
    if want is None or tlen < want:
        if want is not None:
            pkt.expert(tn, Severity.WARN, Group.MALFORMED,
                       f"IEEE 802.15.4 TAP: TLV {ttype} needs {want} bytes, has {tlen}", v - 2, 2)
        tn.add(FT_TAP.tlv_unknown, buf[v : v + tlen], v, tlen)
        return fcs_type
    if ttype == 0:
        fcs_type = buf[v]
        tn.add(FT_TAP.fcs_type, fcs_type, v, 1)
    elif ttype == 1:
        tn.add(FT_TAP.rss, round(struct.unpack_from("<f", buf, v)[0], 6), v, 4)
    elif ttype == 2:
        tn.add(FT_TAP.bit_rate, struct.unpack_from("<I", buf, v)[0], v, 4)
    elif ttype == 3:
        tn.add(FT_TAP.ch_num, struct.unpack_from("<H", buf, v)[0], v, 2)
        tn.add(FT_TAP.ch_page, buf[v + 2], v + 2, 1)
    elif ttype == 4:
        tn.add(FT_TAP.sun_band, buf[v], v, 1)
        tn.add(FT_TAP.sun_type, buf[v + 1], v + 1, 1)
        tn.add(FT_TAP.sun_mode, buf[v + 2], v + 2, 1)
    elif ttype in (5, 6, 7, 8):
        fd = {5: FT_TAP.sof_ts, 6: FT_TAP.eof_ts, 7: FT_TAP.asn, 8: FT_TAP.slot_start_ts}[ttype]
        tn.add(fd, struct.unpack_from("<Q", buf, v)[0], v, 8)
    elif ttype == 9:
        tn.add(FT_TAP.timeslot_length, struct.unpack_from("<I", buf, v)[0], v, 4)
    elif ttype == 10:
        tn.add(FT_TAP.lqi, buf[v], v, 1)
    elif ttype == 11:
        tn.add(FT_TAP.ch_freq, round(struct.unpack_from("<f", buf, v)[0], 6), v, 4)
    elif ttype == 12:
        start, spacing, nch = struct.unpack_from("<ffH", buf, v)
        tn.add(FT_TAP.chplan_start, round(start, 6), v, 4)
        tn.add(FT_TAP.chplan_spacing, round(spacing, 6), v + 4, 4)
        tn.add(FT_TAP.chplan_channels, nch, v + 8, 2)
    return fcs_type


# ---------------------------------------------------------------------------
# The MAC frame


def dissect_mac(pkt: Packet, buf: bytes, off: int, end: int, src: int, fcs_len: int, fcs_kind: str) -> bool:
    """One MAC frame in ``buf[off:end]`` (FCS/metadata of ``fcs_len`` bytes at the end)."""
    lay = pkt.add_layer(P, off, end - off, src)
    fcs_present = fcs_len > 0 and end - off >= fcs_len
    fend = end - fcs_len if fcs_present else end
    fcs_ok = True
    fcs_val = 0
    if fcs_present:
        if fcs_kind == "cc24xx":
            fcs_ok = bool(buf[end - 1] & 0x80)
        elif fcs_len == 4:
            fcs_val = struct.unpack_from("<I", buf, fend)[0]
            fcs_ok = fcs_val == crc32_itu(buf[off:fend])
        else:
            fcs_val = struct.unpack_from("<H", buf, fend)[0]
            fcs_ok = fcs_val == crc16_itu(buf[off:fend])
    _hidden(lay, FW.frame_length, fend - off, off, 0)
    if fend - off > MAX_PSDU_LEN:
        pkt.expert(lay, Severity.WARN, Group.PROTOCOL,
                   f"IEEE 802.15.4-2015 §11.3: PSDU of {fend - off} bytes exceeds aMaxPhyPacketSize", off)
    info = _dissect_frame(pkt, lay, buf, off, fend, src, fcs_ok)
    if info is None or not info.header_ok:
        # Wireshark stops at a header it cannot parse and shows no FCS either.
        return True
    info.fcs_ok = fcs_ok
    if fcs_present:
        _add_fcs(pkt, lay, buf, off, fend, end, fcs_kind, fcs_len, fcs_val, fcs_ok)
    else:
        # No FCS to check: like Wireshark, say "valid" (for filters) but label it unknown.
        _hidden(lay, FW.fcs_ok, True, fend, 0)
    return True


def _add_fcs(pkt: Packet, lay: Layer, buf: bytes, off: int, fend: int, end: int, kind: str,
             fcs_len: int, fcs_val: int, fcs_ok: bool) -> None:
    if kind == "cc24xx":
        rssi = buf[fend] - 256 if buf[fend] > 127 else buf[fend]
        lay.add(FW.rssi, rssi, fend, 1)
        lay.add(FW.fcs_ok, fcs_ok, fend + 1, 1)
        lay.add(FW.correlation, buf[fend + 1] & 0x7F, fend + 1, 1)
    else:
        fd = FW.fcs32 if fcs_len == 4 else FW.fcs
        label = None
        if pkt.tree:
            w = fcs_len * 2
            if fcs_ok:
                label = f"FCS: 0x{fcs_val:0{w}x} (Correct)"
            else:
                calc = crc32_itu(buf[off:fend]) if fcs_len == 4 else crc16_itu(buf[off:fend])
                label = f"FCS: 0x{fcs_val:0{w}x} (Incorrect, expected FCS=0x{calc:0{w}x})"
        lay.add(fd, fcs_val, fend, fcs_len, label=label)
        _hidden(lay, FW.fcs_ok, fcs_ok, fend, fcs_len)
    if not fcs_ok:
        if pkt.cols:
            pkt.info += ", Bad FCS"
        if pkt.tree and lay.label:
            lay.label += ", Bad FCS"
        pkt.expert(lay, Severity.WARN, Group.CHECKSUM, "Bad FCS", fend, end - fend)


def _dissect_frame(pkt: Packet, lay: Layer, buf: bytes, off: int, fend: int, src: int,
                   fcs_ok: bool) -> WpanInfo | None:
    n = fend - off
    tree = pkt.tree
    if n < 1:
        pkt.malformed(lay, "IEEE 802.15.4-2015 §7.2.2: frame shorter than its frame control field", off)
        return None
    ftype = buf[off] & 7
    if ftype == FT_MULTIPURPOSE:
        return _dissect_mpf(pkt, lay, buf, off, fend, src, fcs_ok)
    if n < 2:
        pkt.malformed(lay, "IEEE 802.15.4-2015 §7.2.2: frame shorter than its frame control field", off)
        return None
    fcf = buf[off] | buf[off + 1] << 8
    security = bool(fcf & 0x0008)
    pending = bool(fcf & 0x0010)
    ack_req = bool(fcf & 0x0020)
    panid_comp = bool(fcf & 0x0040)
    seq_supp = bool(fcf & 0x0100)
    ie_present = bool(fcf & 0x0200)
    dst_mode = (fcf >> 10) & 3
    version = (fcf >> 12) & 3
    src_mode = (fcf >> 14) & 3
    info = WpanInfo(ftype, version, security, dst_mode, src_mode)
    pkt.scratch["wpan"] = info

    label = None
    if tree:
        flags = [f"Frame Type: {FRAME_TYPES[ftype]}"]
        for bit, name in ((security, "Security Enabled"), (pending, "Frame Pending"),
                          (ack_req, "Acknowledge Request"), (panid_comp, "PAN ID Compression"),
                          (seq_supp, "Sequence Number Suppression"), (ie_present, "IEs Present")):
            if bit:
                flags.append(name)
        flags += [f"Destination Addressing Mode: {ADDR_MODES[dst_mode]}", f"Frame Version: {VERSIONS[version]}",
                  f"Source Addressing Mode: {ADDR_MODES[src_mode]}"]
        label = f"Frame Control Field: 0x{fcf:04x}, " + ", ".join(flags)
    fn = lay.add(FW.fcf, fcf, off, 2, label=label)
    fn.add(FW.frame_type, ftype, off, 2)
    fn.add(FW.security, security, off, 2)
    fn.add(FW.pending, pending, off, 2)
    fn.add(FW.ack_request, ack_req, off, 2)
    fn.add(FW.pan_id_compression, panid_comp, off, 2)
    fn.add(FW.fcf_reserved, bool(fcf & 0x0080), off, 2)
    fn.add(FW.seqno_suppression, seq_supp, off, 2)
    fn.add(FW.ie_present, ie_present, off, 2)
    fn.add(FW.dst_addr_mode, dst_mode, off, 2)
    fn.add(FW.version, version, off, 2)
    fn.add(FW.src_addr_mode, src_mode, off, 2)
    p = off + 2
    if pkt.cols:
        pkt.info = FRAME_TYPES[ftype]
    title = f"IEEE 802.15.4 {FRAME_TYPES[ftype]}" if tree else ""

    seq: int | None = None
    if seq_supp:
        if version != 2:
            pkt.expert(lay, Severity.WARN, Group.MALFORMED,
                       "Sequence Number Suppression invalid for 802.15.4-2003 and 2006", off, 2)
    else:
        if p >= fend:
            return _truncated(pkt, lay, "sequence number", p, info)
        seq = buf[p]
        lay.add(FW.seq_no, seq, p, 1)
        p += 1
        if ftype == FT_ACK and tree:
            title += f", Sequence Number: {seq}"

    if dst_mode == ADDR_RESERVED or src_mode == ADDR_RESERVED:
        which = "Destination" if dst_mode == ADDR_RESERVED else "Source"
        pkt.malformed(lay, f"IEEE 802.15.4-2015 §7.2.2.9: {which} Addressing Mode 1 is reserved", off, 2)
        _finish_title(pkt, lay, title)
        return _bad_header(pkt, lay, buf, p, fend, src, info)
    if version == 3:
        pkt.malformed(lay, "IEEE 802.15.4-2015 §7.2.2.10: Frame Version 3 is reserved; cannot dissect", off, 2)
        _finish_title(pkt, lay, title)
        return _bad_header(pkt, lay, buf, p, fend, src, info)
    pans = pan_presence(version, ftype, dst_mode, src_mode, panid_comp)
    if pans is None:
        pkt.malformed(lay, "IEEE 802.15.4-2015 §7.2.2.6: invalid setting for PAN ID Compression "
                      f"with these addressing modes (version {version})", off, 2)
        _finish_title(pkt, lay, title)
        return _bad_header(pkt, lay, buf, p, fend, src, info)
    dst_pan_present, src_pan_present = pans

    # Addressing fields (§7.2.4-7.2.7)
    need = (2 if dst_pan_present else 0) + _ALEN[dst_mode] + (2 if src_pan_present else 0) + _ALEN[src_mode]
    if p + need > fend:
        return _truncated(pkt, lay, "addressing fields", p, info)
    if dst_pan_present:
        info.dst_pan = buf[p] | buf[p + 1] << 8
        lay.add(FW.dst_pan, info.dst_pan, p, 2)
        p += 2
    dst_txt = src_txt = ""
    if dst_mode == ADDR_SHORT:
        info.dst16 = buf[p] | buf[p + 1] << 8
        lay.add(FW.dst16, info.dst16, p, 2)
        _hidden(lay, FW.addr16, info.dst16, p, 2)
        dst_txt = fmt_short(info.dst16)
        p += 2
    elif dst_mode == ADDR_EXT:
        info.dst64 = buf[p : p + 8][::-1]
        lay.add(FW.dst64, info.dst64, p, 8)
        _hidden(lay, FW.addr64, info.dst64, p, 8)
        dst_txt = fmt_eui64(info.dst64)
        p += 8
    if src_pan_present:
        info.src_pan = buf[p] | buf[p + 1] << 8
        lay.add(FW.src_pan, info.src_pan, p, 2)
        p += 2
    else:
        info.src_pan = info.dst_pan if dst_pan_present else BROADCAST_PAN
    if src_mode == ADDR_SHORT:
        info.src16 = buf[p] | buf[p + 1] << 8
        lay.add(FW.src16, info.src16, p, 2)
        _hidden(lay, FW.addr16, info.src16, p, 2)
        src_txt = fmt_short(info.src16)
        hit = lookup_short_address(pkt.cap, info.src_pan, info.src16)
        if hit is not None:
            info.src64_learned = hit[0]
            lay.add(FW.src64, hit[0], p, 0, generated=True)
            _hidden(lay, FW.addr64, hit[0], p, 0, generated=True)
            lay.add(FW.src64_origin, hit[1], 0, 0, generated=True)
        p += 2
    elif src_mode == ADDR_EXT:
        info.src64 = buf[p : p + 8][::-1]
        lay.add(FW.src64, info.src64, p, 8)
        _hidden(lay, FW.addr64, info.src64, p, 8)
        src_txt = fmt_eui64(info.src64)
        p += 8
    if dst_txt:
        pkt.dst = dst_txt
        if pkt.cols:
            pkt.info += f", Dst: {dst_txt}"
        if tree:
            title += f", Dst: {dst_txt}"
    if src_txt:
        pkt.src = src_txt
        if pkt.cols:
            pkt.info += f", Src: {src_txt}"
        if tree:
            title += f", Src: {src_txt}"
    pkt.dl_src = info.dl_src()
    pkt.dl_dst = info.dl_dst()
    _finish_title(pkt, lay, title)

    # Auxiliary security header (§9.4), absent in 2003 frames (their security lives in the payload)
    if security and version != 0:
        aux = parse_aux_security(buf, p, fend, version)
        if aux is None:
            return _truncated(pkt, lay, "auxiliary security header", p, info)
        info.aux = aux
        add_aux_security(lay, aux, buf, p)
        p += aux.length

    # Non-payload fields of 2003/2006 beacons and the 2003/2006 command identifier
    cmd_id: int | None = None
    payload_ies = False
    if version < 2:
        if ftype == FT_BEACON:
            q = _beacon_fields(pkt, lay, buf, p, fend)
            if q is None:
                return _truncated(pkt, lay, "beacon superframe/GTS/pending address fields", p, info)
            p = q
        elif ftype == FT_CMD:
            if p >= fend:
                return _truncated(pkt, lay, "command identifier", p, info)
            cmd_id = buf[p]
            lay.add(FW.cmd, cmd_id, p, 1)
            if pkt.cols:
                pkt.info = CMD_NAMES.get(cmd_id, "Unknown Command")
            p += 1
    elif ie_present:
        q, payload_ies = _header_ies(pkt, lay, buf, p, fend)
        p = q

    if security and version == 0:
        # IEEE 802.15.4-2003 §7.6.1: frame counter and key sequence counter lead the payload.
        if p + 5 <= fend:
            lay.add(FW.sec_frame_counter, struct.unpack_from("<I", buf, p)[0], p, 4)
            lay.add(FW.sec_key_sequence_counter, buf[p + 4], p + 4, 1)
            p += 5
        pkt.expert(lay, Severity.WARN, Group.UNDECODED,
                   "IEEE 802.15.4-2003 security is not supported - can't decrypt", p)
        return _rest_as_data(pkt, buf, p, fend, src, info)

    # Payload: decrypt if secured
    pbuf, psrc, pstart, pend = buf, src, p, fend
    if security and info.aux is not None and info.aux.level:
        res = _decrypt(pkt, lay, info, buf, off, p, fend)
        if res is None:
            # Wireshark shows an undecryptable payload as data and stops there.
            m = tk.mic_length(info.aux.level)
            mend = fend - m if fend - p >= m else fend
            if mend > p:
                pkt.cap.call_data(pkt, buf, p, mend, src)
            return info
        pbuf, psrc = res
        pstart, pend = 0, len(pbuf)
        info.decrypted = True

    # Payload IEs (§7.4.3)
    if payload_ies:
        pstart = _payload_ies(pkt, lay, pbuf, pstart, pend, psrc)

    return _frame_payload(pkt, lay, info, pbuf, pstart, pend, psrc, cmd_id, fcs_ok)


_ALEN = (0, 0, 2, 8)


def pan_presence(version: int, ftype: int, dst_mode: int, src_mode: int, comp: bool) -> tuple[bool, bool] | None:
    """Which PAN IDs are in the header: §7.2.2.6 for 2003/2006, Table 7-2 for 2015 frames."""
    d, s = dst_mode != ADDR_NONE, src_mode != ADDR_NONE
    if version < 2:
        if d and s:
            return (True, not comp)
        if comp:
            return None
        return (d, s)
    if ftype not in (FT_BEACON, FT_DATA, FT_ACK, FT_CMD):
        return (False, False)
    if not d and not s:
        return (comp, False)
    if d and not s:
        return (not comp, False)
    if s and not d:
        return (False, not comp)
    if dst_mode == ADDR_EXT and src_mode == ADDR_EXT:
        return (not comp, False)
    return (True, not comp)


def parse_aux_security(buf: bytes, p: int, end: int, version: int) -> AuxSec | None:
    """Auxiliary security header at ``p`` (§9.4.1); None if it does not fit."""
    if p >= end:
        return None
    sc = buf[p]
    aux = AuxSec(level=sc & 7, key_id_mode=(sc >> 3) & 3)
    if version == 2:
        aux.fc_suppressed = bool(sc & 0x20)
        aux.asn_in_nonce = bool(sc & 0x40)
    q = p + 1
    if not aux.fc_suppressed:
        if q + 4 > end:
            return None
        aux.frame_counter = struct.unpack_from("<I", buf, q)[0]
        q += 4
    if aux.key_id_mode:
        ks = {1: 0, 2: 4, 3: 8}[aux.key_id_mode]
        if q + ks + 1 > end:
            return None
        if ks:
            aux.key_source = int.from_bytes(buf[q : q + ks], "big")
            aux.key_source_len = ks
            q += ks
        aux.key_index = buf[q]
        q += 1
    aux.length = q - p
    return aux


def add_aux_security(parent: Node, aux: AuxSec, buf: bytes, p: int) -> None:
    """The auxiliary security header subtree (wpan.aux_sec.*), shared with MLE."""
    pkt = parent.pkt
    sc = buf[p]
    h = parent.add(FW.aux_sec_hdr, None, p, aux.length)
    label = None
    if pkt.tree:
        label = (f"Security Control Field: 0x{sc:02x}, Security Level: {SEC_LEVELS[aux.level]}, "
                 f"Key Identifier Mode: {KEY_ID_MODES[aux.key_id_mode]}")
    c = h.add(FW.aux_sec_security_control_field, sc, p, 1, label=label)
    c.add(FW.aux_sec_sec_level, aux.level, p, 1)
    c.add(FW.aux_sec_key_id_mode, aux.key_id_mode, p, 1)
    c.add(FW.aux_sec_frame_counter_suppression, bool(sc & 0x20), p, 1)
    c.add(FW.aux_sec_asn_in_nonce, bool(sc & 0x40), p, 1)
    c.add(FW.aux_sec_reserved, sc >> 7, p, 1)
    q = p + 1
    if aux.frame_counter is not None:
        h.add(FW.aux_sec_frame_counter, aux.frame_counter, q, 4)
        q += 4
    if aux.key_id_mode:
        kn = h.add_text("Key Identifier Field", q, aux.key_source_len + 1)
        if aux.key_source is not None:
            kn.add(FW.aux_sec_key_source, aux.key_source, q, aux.key_source_len)
            _hidden(kn, FW.aux_sec_key_source_bytes, buf[q : q + aux.key_source_len], q, aux.key_source_len)
            q += aux.key_source_len
        kn.add(FW.aux_sec_key_index, aux.key_index, q, 1)


def _hidden(parent: Node, fd: Any, value: Any, off: int, length: int, generated: bool = False) -> None:
    """A field Wireshark adds hidden: there for -e and filters (primed), never in the tree."""
    if fd.primed:
        parent.add(fd, value, off, length, generated=generated)


def _finish_title(pkt: Packet, lay: Layer, title: str) -> None:
    if pkt.tree:
        lay.label = title


def _truncated(pkt: Packet, lay: Layer, what: str, p: int, info: WpanInfo) -> WpanInfo:
    pkt.malformed(lay, f"IEEE 802.15.4-2015 §7.2: frame ends inside the {what}", p)
    info.header_ok = False
    return info


def _bad_header(pkt: Packet, lay: Layer, buf: bytes, p: int, end: int, src: int, info: WpanInfo) -> WpanInfo:
    info.header_ok = False
    return _rest_as_data(pkt, buf, p, end, src, info)


def _rest_as_data(pkt: Packet, buf: bytes, p: int, end: int, src: int, info: WpanInfo) -> WpanInfo:
    if end > p:
        pkt.cap.call_data(pkt, buf, p, end, src)
    return info


def _dissect_mpf(pkt: Packet, lay: Layer, buf: bytes, off: int, fend: int, src: int,
                 fcs_ok: bool) -> WpanInfo | None:
    """Multipurpose frame (§7.3.5): short (1 byte) or long (2 byte) frame control."""
    long_fc = bool(buf[off] & 0x08)
    if long_fc and fend - off < 2:
        pkt.malformed(lay, "IEEE 802.15.4-2015 §7.3.5: long frame control needs 2 bytes", off)
        return None
    fcf = buf[off] | (buf[off + 1] << 8 if long_fc else 0)
    dst_mode = (fcf >> 4) & 3
    src_mode = (fcf >> 6) & 3
    pan_present = bool(fcf & 0x100) if long_fc else False
    security = bool(fcf & 0x200) if long_fc else False
    seq_supp = bool(fcf & 0x400) if long_fc else False
    mver = (fcf >> 12) & 3 if long_fc else 0
    ie_present = bool(fcf & 0x8000) if long_fc else False
    info = WpanInfo(FT_MULTIPURPOSE, 0, security, dst_mode, src_mode)
    pkt.scratch["wpan"] = info
    flen = 2 if long_fc else 1
    fn = lay.add(FW.fcf, fcf, off, flen)
    fn.add(FW.frame_type, FT_MULTIPURPOSE, off, flen)
    fn.add(FW.long_frame_control, long_fc, off, flen)
    fn.add(FW.dst_addr_mode, dst_mode, off, flen)
    fn.add(FW.src_addr_mode, src_mode, off, flen)
    if long_fc:
        fn.add(FW.pan_id_present, pan_present, off, flen)
        fn.add(FW.security, security, off, flen)
        fn.add(FW.seqno_suppression, seq_supp, off, flen)
        fn.add(FW.pending, bool(fcf & 0x800), off, flen)
        fn.add(FW.mpf_version, mver, off, flen)
        fn.add(FW.ack_request, bool(fcf & 0x4000), off, flen)
        fn.add(FW.ie_present, ie_present, off, flen)
    if pkt.cols:
        pkt.info = "Multipurpose"
    if pkt.tree:
        lay.label = "IEEE 802.15.4 Multipurpose"
    p = off + flen
    if not seq_supp:
        if p >= fend:
            return _truncated(pkt, lay, "sequence number", p, info)
        lay.add(FW.seq_no, buf[p], p, 1)
        p += 1
    if mver != 0 or dst_mode == ADDR_RESERVED or src_mode == ADDR_RESERVED:
        pkt.malformed(lay, "IEEE 802.15.4-2015 §7.3.5: unsupported multipurpose frame version or "
                      "addressing mode", off, flen)
        return _bad_header(pkt, lay, buf, p, fend, src, info)
    need = (2 if pan_present else 0) + _ALEN[dst_mode] + _ALEN[src_mode]
    if p + need > fend:
        return _truncated(pkt, lay, "addressing fields", p, info)
    if pan_present:
        info.dst_pan = info.src_pan = buf[p] | buf[p + 1] << 8
        lay.add(FW.dst_pan, info.dst_pan, p, 2)
        p += 2
    if dst_mode == ADDR_SHORT:
        info.dst16 = buf[p] | buf[p + 1] << 8
        lay.add(FW.dst16, info.dst16, p, 2)
        _hidden(lay, FW.addr16, info.dst16, p, 2)
        p += 2
    elif dst_mode == ADDR_EXT:
        info.dst64 = buf[p : p + 8][::-1]
        lay.add(FW.dst64, info.dst64, p, 8)
        _hidden(lay, FW.addr64, info.dst64, p, 8)
        p += 8
    if src_mode == ADDR_SHORT:
        info.src16 = buf[p] | buf[p + 1] << 8
        lay.add(FW.src16, info.src16, p, 2)
        _hidden(lay, FW.addr16, info.src16, p, 2)
        p += 2
    elif src_mode == ADDR_EXT:
        info.src64 = buf[p : p + 8][::-1]
        lay.add(FW.src64, info.src64, p, 8)
        _hidden(lay, FW.addr64, info.src64, p, 8)
        p += 8
    pkt.dl_src, pkt.dl_dst = info.dl_src(), info.dl_dst()
    for txt, addr16, addr64, attr in (("Dst", info.dst16, info.dst64, "dst"), ("Src", info.src16, info.src64, "src")):
        t = fmt_short(addr16) if addr16 is not None else fmt_eui64(addr64) if addr64 is not None else ""
        if t:
            setattr(pkt, attr, t)
            if pkt.cols:
                pkt.info += f", {txt}: {t}"
    if security:
        pkt.expert(lay, Severity.WARN, Group.UNDECODED,
                   "Decryption of multipurpose frames is not supported - can't decrypt", p)
        return _rest_as_data(pkt, buf, p, fend, src, info)
    payload_ies = False
    if ie_present:
        p, payload_ies = _header_ies(pkt, lay, buf, p, fend)
    if payload_ies:
        p = _payload_ies(pkt, lay, buf, p, fend, src)
    return _rest_as_data(pkt, buf, p, fend, src, info)


# ---------------------------------------------------------------------------
# Security


def _key_candidates(pkt: Packet, info: WpanInfo) -> list[tuple[int, bytes]]:
    """(key number, key) pairs to try for this frame, likeliest first.

    Key numbers count the configured keys in a fixed order, like the rows of Wireshark's key
    table: ``thread.network_key``, ``wpan.key``, ``thread.kek``, then KEKs learned from the traffic.
    """
    cap = pkt.cap
    aux = info.aux
    assert aux is not None
    nk: bytes = cap.pref("thread.network_key")
    plain: bytes = cap.pref("wpan.key")
    pref_kek: bytes = cap.pref("thread.kek")
    n_nk = 1 if nk else 0
    n_plain = 1 if plain and len(plain) == tk.KEY_LEN else 0
    out: list[tuple[int, bytes]] = []
    mode = aux.key_id_mode
    if mode == 0:
        keks = tk.kek_candidates(cap.state, pref_kek)
        base = n_nk + n_plain
        for k in keks:
            # The preference (if any) is row ``base``; learned KEKs follow in the order learned.
            idx = 0 if pref_kek and k == pref_kek else (1 if pref_kek else 0) + _learned_index(cap, k)
            out.append((base + idx, k))
    elif mode == 1 and nk and aux.key_index is not None:
        for seq in tk.sequences_for_key_index(aux.key_index, thread_key_sequence(cap)):
            out.append((0, tk.mac_key(nk, seq)))
    elif mode == 2 and aux.key_source is not None:
        if aux.key_source == tk.THREAD_WELL_KNOWN_KEY_SOURCE and aux.key_index == tk.THREAD_WELL_KNOWN_KEY_INDEX:
            out.append((0, tk.THREAD_WELL_KNOWN_KEY))
        elif nk:
            out.append((0, tk.mac_key(nk, aux.key_source)))
    if n_plain:
        out.append((n_nk, plain))
    return out


def _learned_index(cap: Any, kek: bytes) -> int:
    hist: list[bytes] = cap.state.get("thread.kek_history", [])
    return hist.index(kek) if kek in hist else len(hist)


def thread_key_sequence(cap: Any) -> int:
    """The key sequence 7-bit key indexes are expanded around: the preference, else learned."""
    pref = cap.pref("thread.key_sequence")
    if pref is not None and pref >= 0:
        return int(pref)
    return int(cap.state.get("thread.key_sequence", 0))


def learn_key_sequence(cap: Any, seq: int) -> None:
    """MLE (Key ID Mode 2) tells the current key sequence; Wireshark acquires it the same way."""
    cap.state["thread.key_sequence"] = seq


def _decrypt(pkt: Packet, lay: Layer, info: WpanInfo, buf: bytes, off: int, p: int,
             fend: int) -> tuple[bytes, int] | None:
    """CCM* on ``buf[p:fend]`` with the MAC header ``buf[off:p]`` as authenticated data.

    Returns the plaintext and its data source index, or None with an expert entry saying why.
    The MIC is shown either way. Authenticated-only levels (1-3) always return the payload, which
    was never encrypted; a failed MIC there is only noted.
    """
    aux = info.aux
    assert aux is not None
    m = tk.mic_length(aux.level)
    if fend - p < m:
        _decrypt_error(pkt, lay, "Packet was too small to include the CRC and MIC", p)
        return None
    if m:
        lay.add(FW.mic, buf[fend - m : fend], fend - m, m)
    if aux.fc_suppressed:
        _decrypt_error(pkt, lay, "Decryption of 802.15.4-2015 with frame counter suppression is not supported", p)
        return None
    if aux.asn_in_nonce:
        _decrypt_error(pkt, lay, "Decryption with the TSCH ASN in the nonce is not supported", p)
        return None
    # Like Wireshark: without a key there is nothing to try, whatever else is missing.
    cands = _key_candidates(pkt, info)
    if not cands:
        _decrypt_error(pkt, lay, "No encryption key set - can't decrypt", p)
        return None
    ext = info.sender_ext
    if ext is None:
        _decrypt_error(pkt, lay, "No extended source address - can't decrypt", p)
        return None
    nonce = tk.ccm_nonce(ext, aux.frame_counter or 0, aux.level)
    aad = buf[off:p]
    payload = buf[p:fend]
    for num, key in cands:
        pt, status = tk.ccm_star_decrypt(key, nonce, aux.level, aad, payload)
        if status in (tk.OK, tk.UNVERIFIED):
            lay.add(FW.key_number, num, 0, 0, generated=True)
            if status == tk.UNVERIFIED:
                pkt.expert(lay, Severity.NOTE, Group.DECRYPTION,
                           "Security level 4 has no MIC: the decryption cannot be verified", p)
            if not tk.is_encrypted(aux.level):
                # MIC-only levels: the payload was in the clear all along.
                return _register_plain(pkt, buf, p, fend - m)
            return pt, pkt.add_source("Decrypted IEEE 802.15.4 payload", pt)
    _decrypt_error(pkt, lay, "MIC check failed", fend - m if m else p)
    if not tk.is_encrypted(aux.level):
        return _register_plain(pkt, buf, p, fend - m)
    return None


def _register_plain(pkt: Packet, buf: bytes, p: int, end: int) -> tuple[bytes, int]:
    """Authenticated-only payloads are plaintext; give them a source so offsets stay simple."""
    data = bytes(buf[p:end])
    return data, pkt.add_source("IEEE 802.15.4 payload", data)


def _decrypt_error(pkt: Packet, lay: Layer, msg: str, offset: int) -> None:
    pkt.expert(lay, Severity.WARN, Group.UNDECODED, msg, offset)


# ---------------------------------------------------------------------------
# Information elements


def _header_ies(pkt: Packet, lay: Layer, buf: bytes, p: int, end: int) -> tuple[int, bool]:
    """Header IE list (§7.4.2); returns (offset after it, whether payload IEs follow)."""
    start = p
    cont = lay.add(FW.header_ie, None, p, 0)
    count = 0
    payload_ies = False
    while p + 2 <= end:
        count += 1
        if count > MAX_IES:
            pkt.malformed(lay, f"more than {MAX_IES} header IEs", p)
            break
        hdr = buf[p] | buf[p + 1] << 8
        length = hdr & 0x7F
        eid = (hdr >> 7) & 0xFF
        typ = hdr >> 15
        if typ != 0:
            # A payload IE where a header IE should be: the header list ended without termination.
            pkt.expert(lay, Severity.WARN, Group.MALFORMED, "Payload IE in header (no Header Termination IE)", p, 2)
            payload_ies = True
            break
        v = p + 2
        name = HEADER_IE_NAMES.get(eid, "Unknown IE")
        tl = cont.add(FW.header_ie_tlv, hdr, p, 2,
                      label=f"IE Header: 0x{hdr:04x}, {name}, Length: {length}" if pkt.tree else None)
        tl.add(FW.header_ie_type, typ, p, 2)
        tl.add(FW.header_ie_id, eid, p, 2)
        tl.add(FW.header_ie_length, length, p, 2)
        if v + length > end:
            pkt.malformed(lay, f"IEEE 802.15.4-2015 §7.4.2: header IE 0x{eid:02x} length {length} runs past the frame", p, 2)
            p = end
            break
        if eid == HIE_HT1:
            cont.add(FW.header_ie_ht1, None, p, 2 + length)
            p = v + length
            payload_ies = True
            break
        if eid == HIE_HT2:
            cont.add(FW.header_ie_ht2, None, p, 2 + length)
            p = v + length
            break
        _header_ie_content(pkt, tl, buf, eid, v, length)
        p = v + length
    if cont is not lay:
        cont.length = p - start
    return p, payload_ies


def _header_ie_content(pkt: Packet, tl: Node, buf: bytes, eid: int, v: int, length: int) -> None:
    if eid == HIE_VENDOR and length >= 3:
        n = tl.add(FW.header_ie_vendor_specific, None, v, length)
        n.add(FW.header_ie_vendor_specific_vendor_oui, int.from_bytes(buf[v : v + 3], "little"), v, 3,
              label=_oui_label(buf, v) if pkt.tree else None)
        if length > 3:
            n.add(FW.header_ie_vendor_specific_content, buf[v + 3 : v + length], v + 3, length - 3)
    elif eid == HIE_CSL and length in (4, 6, 8):
        n = tl.add(FW.header_ie_csl, None, v, length)
        n.add(FW.header_ie_csl_phase, struct.unpack_from("<h", buf, v)[0], v, 2)
        n.add(FW.header_ie_csl_period, struct.unpack_from("<h", buf, v + 2)[0], v + 2, 2)
        if length >= 6:
            n.add(FW.header_ie_csl_rendezvous_time, struct.unpack_from("<h", buf, v + 4)[0], v + 4, 2)
    elif eid == HIE_RENDEZVOUS and length in (2, 4):
        n = tl.add(FW.header_ie_rdv, None, v, length)
        n.add(FW.header_ie_csl_rendezvous_time, struct.unpack_from("<h", buf, v)[0], v, 2)
        if length == 4:
            n.add(FW.header_ie_csl_wakeup_interval, struct.unpack_from("<h", buf, v + 2)[0], v + 2, 2)
    elif eid == HIE_TIME_CORRECTION and length == 2:
        tsi = buf[v] | buf[v + 1] << 8
        n = tl.add(FW.header_ie_time_correction, None, v, 2)
        n.add(FW.header_ie_time_correction_time_sync_info, tsi, v, 2)
        corr = tsi & 0x0FFF
        if corr & 0x0800:
            corr -= 0x1000
        n.add(FW.header_ie_time_correction_value, corr, v, 2)
        n.add(FW.nack, bool(tsi & 0x8000), v, 2)
    elif eid == HIE_GLOBAL_TIME and length == 4:
        n = tl.add(FW.header_ie_global_time, None, v, 4)
        n.add(FW.header_ie_global_time_value, struct.unpack_from("<I", buf, v)[0] * 1_000_000_000, v, 4)
    elif length:
        tl.add(FW.ie_unknown_content, buf[v : v + length], v, length)


def _payload_ies(pkt: Packet, lay: Layer, buf: bytes, p: int, end: int, src: int) -> int:
    """Payload IE list (§7.4.3), possibly inside the decrypted payload; returns its end."""
    start = p
    cont = _sub(lay, FW.payload_ie, None, p, 0, src)
    count = 0
    while p + 2 <= end:
        count += 1
        if count > MAX_IES:
            pkt.malformed(lay, f"more than {MAX_IES} payload IEs", p)
            break
        hdr = buf[p] | buf[p + 1] << 8
        length = hdr & 0x7FF
        gid = (hdr >> 11) & 0xF
        v = p + 2
        name = PAYLOAD_IE_NAMES.get(gid, "Unknown IE")
        tl = cont.add(FW.payload_ie_tlv, hdr, p, 2,
                      label=f"IE Header: 0x{hdr:04x}, {name}, Length: {length}" if pkt.tree else None)
        tl.add(FW.payload_ie_type, hdr >> 15, p, 2)
        tl.add(FW.payload_ie_id, gid, p, 2)
        tl.add(FW.payload_ie_length, length, p, 2)
        if v + length > end:
            pkt.malformed(lay, f"IEEE 802.15.4-2015 §7.4.3: payload IE group {gid} length {length} runs past the frame", p, 2)
            return end
        if gid == PIE_TERMINATION:
            tl.add(FW.payload_ie_termination, None, p, 2 + length)
            p = v + length
            break
        if gid == PIE_MLME:
            _mlme_ies(pkt, tl, buf, v, v + length)
        elif gid == PIE_VENDOR and length >= 3:
            n = tl.add(FW.payload_ie_vendor, None, v, length)
            n.add(FW.payload_ie_vendor_oui, int.from_bytes(buf[v : v + 3], "little"), v, 3,
                  label=_oui_label(buf, v) if pkt.tree else None)
            if length > 3:
                # Vendor content has no structure 802.15.4 knows: raw data, as Wireshark shows it.
                pkt.cap.call_data(pkt, buf, v + 3, v + length, src)
        elif length:
            n = tl.add(FW.payload_ie_unknown, None, v, length)
            n.add(FW.ie_unknown_content, buf[v : v + length], v, length)
        p = v + length
    if cont is not lay:
        cont.length = p - start
    return p


def _oui_label(buf: bytes, v: int) -> str:
    """OUIs are sent least significant byte first (IEEE 802.15.4-2015 §7.4.2.2)."""
    return "Vendor OUI: " + ":".join(f"{b:02x}" for b in buf[v : v + 3][::-1])


def _mlme_ies(pkt: Packet, parent: Node, buf: bytes, p: int, end: int) -> None:
    """Nested MLME sub-IEs (§7.4.4): short (8-bit length, 7-bit id) or long (11-bit length)."""
    m = parent.add(FW.mlme, None, p, end - p)
    count = 0
    while p + 2 <= end:
        count += 1
        if count > MAX_SUB_IES:
            pkt.malformed(m, f"more than {MAX_SUB_IES} MLME sub-IEs", p)
            return
        hdr = buf[p] | buf[p + 1] << 8
        if hdr & 0x8000:
            length, sid = hdr & 0x7FF, (hdr >> 11) & 0xF
        else:
            length, sid = hdr & 0xFF, (hdr >> 8) & 0x7F
        s = m.add(FW.mlme_ie, hdr, p, 2 + length)
        s.add(FW.mlme_ie_type, hdr >> 15, p, 2)
        s.add(FW.mlme_ie_id, sid, p, 2)
        s.add(FW.mlme_ie_length, length, p, 2)
        v = p + 2
        if v + length > end:
            pkt.malformed(m, f"IEEE 802.15.4-2015 §7.4.4: MLME sub-IE 0x{sid:02x} runs past its IE", p, 2)
            return
        if not hdr & 0x8000 and sid == MLME_TSCH_SYNC and length == 6:
            t = s.add(FW.tsch_time_sync, None, v, 6)
            t.add(FW.tsch_asn, int.from_bytes(buf[v : v + 5], "little"), v, 5)
            t.add(FW.tsch_join_metric, buf[v + 5], v + 5, 1)
        elif length:
            s.add(FW.mlme_data, buf[v : v + length], v, length)
        p = v + length


def _container(parent: Node, text: str, off: int, length: int, src: int) -> Node:
    """A label-only subtree whose children's bytes live in data source ``src``."""
    n = parent.add_text(text, off, length)
    if n is not parent:
        n.src = src
    return n


def _sub(parent: Node, fd: Any, value: Any, off: int, length: int, src: int) -> Node:
    """Add a container node whose bytes live in another data source (decrypted payload)."""
    n = parent.add(fd, value, off, length)
    if n is not parent:
        n.src = src
    return n


# ---------------------------------------------------------------------------
# Beacons, commands, data


def _beacon_fields(pkt: Packet, lay: Layer, buf: bytes, p: int, end: int) -> int | None:
    """Superframe specification, GTS and pending address fields of a 2003/2006 beacon (§7.3.1)."""
    if p + 4 > end:
        return None
    sf = buf[p] | buf[p + 1] << 8
    lay.add(FW.beacon_order, sf & 0xF, p, 2)
    lay.add(FW.superframe_order, (sf >> 4) & 0xF, p, 2)
    lay.add(FW.cap, (sf >> 8) & 0xF, p, 2)
    lay.add(FW.battery_ext, bool(sf & 0x1000), p, 2)
    lay.add(FW.bcn_coord, bool(sf & 0x4000), p, 2)
    lay.add(FW.assoc_permit, bool(sf & 0x8000), p, 2)
    p += 2
    gts = buf[p]
    count = gts & 7
    lay.add(FW.gts_count, count, p, 1)
    lay.add(FW.gts_permit, bool(gts & 0x80), p, 1)
    p += 1
    if count:
        if p + 1 + 3 * count > end:
            return None
        dirs = buf[p]
        p += 1
        for i in range(count):
            lay.add(FW.gts_direction, bool(dirs >> i & 1), p - 1, 1)
            lay.add(FW.gts_address, buf[p] | buf[p + 1] << 8, p, 2)
            p += 3
    if p >= end:
        return None
    pa = buf[p]
    ns, ne = pa & 7, (pa >> 4) & 7
    p += 1
    if p + 2 * ns + 8 * ne > end:
        return None
    for _ in range(ns):
        lay.add(FW.pending16, buf[p] | buf[p + 1] << 8, p, 2)
        p += 2
    for _ in range(ne):
        lay.add(FW.pending64, buf[p : p + 8][::-1], p, 8)
        p += 8
    return p


def _frame_payload(pkt: Packet, lay: Layer, info: WpanInfo, buf: bytes, p: int, end: int, src: int,
                   cmd_id: int | None, fcs_ok: bool) -> WpanInfo:
    ft = info.frame_type
    cap = pkt.cap
    if ft == FT_CMD:
        _command(pkt, lay, info, buf, p, end, src, cmd_id)
        return info
    if p >= end:
        return info
    if ft == FT_BEACON:
        if not _thread_beacon(pkt, buf, p, end, src):
            cap.call_data(pkt, buf, p, end, src)
        return info
    if ft == FT_DATA:
        if not fcs_ok and cap.pref("wpan.802154_fcs_ok"):
            cap.call_data(pkt, buf, p, end, src)
            return info
        if cap.call_heuristics("wpan", pkt, buf, p, end, src):
            return info
    cap.call_data(pkt, buf, p, end, src)
    return info


def _command(pkt: Packet, lay: Layer, info: WpanInfo, buf: bytes, p: int, end: int, src: int,
             cmd_id: int | None) -> None:
    if cmd_id is None:
        # 2015 frames: the command identifier is part of the (possibly encrypted) payload.
        if p >= end:
            pkt.malformed(lay, "IEEE 802.15.4-2015 §7.3.4: command frame without Command ID", p)
            return
        cmd_id = buf[p]
        c = _sub(lay, FW.cmd, cmd_id, p, 1, src)
        if pkt.cols:
            pkt.info = CMD_NAMES.get(cmd_id, "Unknown Command")
        p += 1
    else:
        c = _container(lay, "Command Payload", p, end - p, src) if src != lay.src else lay
    n = end - p
    short = None
    info_extra = ""
    if cmd_id == 0x01:  # Association Request: capability information (§7.5.2)
        if n >= 1:
            ci = buf[p]
            info_extra = ", FFD" if ci & 0x02 else ", RFD"
            for fd, bit in ((FW.cinfo_alt_coord, 0x01), (FW.cinfo_device_type, 0x02), (FW.cinfo_power_src, 0x04),
                            (FW.cinfo_idle_rx, 0x08), (FW.cinfo_sec_capable, 0x40), (FW.cinfo_alloc_addr, 0x80)):
                _sub(c, fd, bool(ci & bit), p, 1, src)
            p += 1
        else:
            short = "capability information"
    elif cmd_id == 0x02:  # Association Response (§7.5.3)
        if n >= 3:
            addr = buf[p] | buf[p + 1] << 8
            status = buf[p + 2]
            _sub(c, FW.asoc_addr, addr, p, 2, src)
            _sub(c, FW.assoc_status, status, p + 2, 1, src)
            info_extra = (f", PAN: 0x{info.dst_pan if info.dst_pan is not None else 0:04x} Addr: 0x{addr:04x}"
                          if status == 0 else f", {ASSOC_STATUS.get(status, 'Unsuccessful')}")
            if status == 0 and info.dst64 is not None:
                learn_short_address(pkt.cap, info.dst_pan if info.dst_pan is not None else info.src_pan,
                                    addr, info.dst64, pkt.number)
            p += 3
        else:
            short = "short address and status"
    elif cmd_id == 0x03:  # Disassociation Notification (§7.5.4)
        if n >= 1:
            _sub(c, FW.disassoc_reason, buf[p], p, 1, src)
            p += 1
        else:
            short = "disassociation reason"
    elif cmd_id == 0x08:  # Coordinator Realignment (§7.5.10)
        if n >= 7:
            info_extra = (f", PAN: 0x{buf[p] | buf[p + 1] << 8:04x}, Coordinator: 0x{buf[p + 2] | buf[p + 3] << 8:04x}"
                          f", Channel: {buf[p + 4]}, Addr: 0x{buf[p + 5] | buf[p + 6] << 8:04x}")
            _sub(c, FW.realign_pan, buf[p] | buf[p + 1] << 8, p, 2, src)
            _sub(c, FW.realign_addr, buf[p + 2] | buf[p + 3] << 8, p + 2, 2, src)
            _sub(c, FW.realign_channel, buf[p + 4], p + 4, 1, src)
            _sub(c, FW.realign_addr, buf[p + 5] | buf[p + 6] << 8, p + 5, 2, src)
            p += 7
            if end - p >= 1:
                _sub(c, FW.realign_channel_page, buf[p], p, 1, src)
                p += 1
        else:
            short = "realignment fields"
    elif cmd_id == 0x09:  # GTS Request (§7.5.11)
        if n >= 1:
            g = buf[p]
            _sub(c, FW.gtsreq_length, g & 0xF, p, 1, src)
            _sub(c, FW.gtsreq_direction, bool(g & 0x10), p, 1, src)
            _sub(c, FW.gtsreq_type, bool(g & 0x20), p, 1, src)
            p += 1
        else:
            short = "GTS characteristics"
    elif cmd_id == 0x24 and n >= 3:  # Vendor Specific: OUI then content
        _sub(c, FW.cmd_vendor_oui, int.from_bytes(buf[p : p + 3], "little"), p, 3, src)
        p += 3
    if info_extra and pkt.cols:
        pkt.info += info_extra
    if short:
        pkt.malformed(lay, f"IEEE 802.15.4-2015 §7.5: {CMD_NAMES.get(cmd_id, 'command')} lacks its {short}", p)
    if end > p:
        pkt.cap.call_data(pkt, buf, p, end, src)


def _thread_beacon(pkt: Packet, buf: bytes, p: int, end: int, src: int) -> bool:
    """Thread beacon payload (Thread 1.1 §4.5.1.1): protocol id 3, flags, network name, XPANID, TLVs."""
    if end - p < THREAD_BEACON_MIN_LEN or buf[p] != THREAD_BEACON_PROTOCOL_ID:
        return False
    lay = pkt.add_layer(P_TBCN, p, end - p, src)
    lay.add(FTB.protocol, buf[p], p, 1)
    f = buf[p + 1]
    lay.add(FTB.joining, bool(f & 0x01), p + 1, 1)
    lay.add(FTB.native, bool(f & 0x08), p + 1, 1)
    lay.add(FTB.version, f >> 4, p + 1, 1)
    name = buf[p + 2 : p + 18].split(b"\x00", 1)[0].decode("utf-8", "replace")
    lay.add(FTB.network_name, name, p + 2, 16)
    lay.add(FTB.epid, bytes(buf[p + 18 : p + 26]), p + 18, 8)
    q = p + 26
    count = 0
    while q + 2 <= end and count < MAX_IES:
        count += 1
        t, ln = buf[q], buf[q + 1]
        tn = lay.add(FTB.tlv, None, q, 2 + ln)
        tn.add(FTB.tlv_type, t, q, 1)
        tn.add(FTB.tlv_len, ln, q + 1, 1)
        if q + 2 + ln > end:
            pkt.malformed(lay, f"Thread beacon TLV {t} length {ln} runs past the payload", q + 1, 1)
            break
        tn.add(FTB.tlv_steering_data if t == 8 else FTB.tlv_unknown, buf[q + 2 : q + 2 + ln], q + 2, ln)
        q += 2 + ln
    if pkt.cols:
        pkt.info += f", Network ID: {name}"
    if pkt.tree:
        lay.label = f"Thread Beacon, Protocol ID: {buf[p]}, Version: {f >> 4}, Network Name: {name}"
    return True


REGISTRY.add("wtap_encap", 195, "wpan")
REGISTRY.add("wtap_encap", 215, "wpan-nonask-phy")
REGISTRY.add("wtap_encap", 230, "wpan_nofcs")
REGISTRY.add("wtap_encap", 283, "wpan-tap")
# As in Wireshark: Linux cooked captures of a wpan interface (ETH_P_IEEE802154) and 802.15.4 frames
# carried in Ethernet (ethertype 0x809a, the wpan.802154_ethertype default).
REGISTRY.add("sll.ltype", 0x00F6, "wpan")
REGISTRY.add("ethertype", 0x809A, "wpan")
