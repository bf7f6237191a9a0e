"""OpenID for Verifiable Credential Issuance 1.0 (pre-authorized code flow) and OpenID for Verifiable
Presentations 1.0 (DCQL, ``direct_post``): all OpenID4VC protocol code lives here.

``issuer`` holds the offers, the token, nonce and credential endpoints and the metadata; ``keys`` checks the
wallet's key proof and names its key as a DID; ``jwt_vc`` secures a credential as ``vc+jwt`` for ``jwt_vc_json``;
``verifier`` makes presentation requests and keeps their verdicts; ``errors`` is the OAuth error form these
endpoints answer with. Storage is :mod:`node.credentials.offers`.
"""
