"""leia — Learnable Encryption: Implementations and Attacks."""

__version__ = "0.1.0"
