"""Verifiable credentials: issuance, verification, status lists, the holder wallet and transcripts."""
