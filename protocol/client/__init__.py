"""A device's side of the relay (spec/relay.md §2-§3, §7-§8).

``connection`` speaks the relay protocol, ``inbox`` turns at-least-once
fetches into exactly-once delivery, ``publish`` splits and reassembles
prekey bundles, and ``device`` joins a ``SessionManager`` to a connection.
"""
