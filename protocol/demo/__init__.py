"""``e2ee demo``: messages and a group call of five devices through a relay (spec/relay.md §8).

``run`` starts the relay and the devices and runs the conversation, ``call``
the group call as the devices run it, ``entitlement`` the check that no
member decrypts a frame it was not entitled to, ``summary`` the printed
table, ``command`` the subcommand.
"""
