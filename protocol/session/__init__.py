"""Sessions between devices (spec/session.md): the API an application calls.

* ``protocol.session.manager``: ``SessionManager`` (one device) and
  ``Session`` (a handle on one peer);
* ``protocol.session.records``: ``Address`` and the stored records
  (``DeviceRecord``, ``TrustedIdentity``, ``SessionState``, ``SessionRecord``)
  with their tables;
* ``protocol.session.prekey_lifecycle``: prekey creation, rotation, expiry
  and bundles (spec/session.md §2);
* ``protocol.session.identity_trust``: trust on first use and safety
  numbers of peers (spec/session.md §6);
* ``protocol.session.sessions``: set-up, the handshake's name and
  decryption over records (spec/session.md §3-§4).
"""

from protocol.session.manager import Session, SessionManager
from protocol.session.records import Address

__all__ = ["Address", "Session", "SessionManager"]
