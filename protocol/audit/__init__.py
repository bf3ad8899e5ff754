"""``e2ee audit``: what a relay capture reveals, and that none of it decrypts (spec/relay.md §9).

``observe`` rebuilds what the relay saw from its capture; ``evidence`` runs
the four parts of the audit over it: the metadata, the secret scan
(with the demo's dump from ``secrets``), the key trial (``keytrial``) and the
symbolic closure (``knowledge``).
"""
