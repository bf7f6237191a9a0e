"""Reaching other servers: the one guarded outbound HTTP client, the rule for private addresses, DID resolution.

This room sits low in the house (above ``store``, below ``catalog``, ``credentials``, ``federation``, ``oai`` and
``conformance``), so that every module that fetches or resolves a key uses the same guard without importing a
sibling service package.
"""
