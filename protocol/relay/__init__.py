"""The untrusted relay: store-and-forward server, client, capture and audit (spec/relay.md).

The server carries prekey bundles, queued messages and call media as opaque
bytes between devices. It holds no private key; ``audit`` shows from a
capture of every byte it saw what it learns and that none of it decrypts.
"""
