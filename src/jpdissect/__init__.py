"""jpdissect: a Wireshark-style dissector and trace analyzer for join-proxy onboarding traffic."""

__version__ = "0.1.0"
