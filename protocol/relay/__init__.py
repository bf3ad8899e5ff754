"""The untrusted relay: the store-and-forward server and the protocol it speaks (spec/relay.md).

The server carries prekey bundles, queued messages and call media as opaque
bytes between devices and can record every byte it sees to a capture. It
holds no private key. Devices reach it through ``protocol.client``; what a
capture shows is established by ``protocol.audit``. Nothing here imports
either, nor ``protocol.demo``.
"""
