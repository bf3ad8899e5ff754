"""Reference implementation of X3DH/PQXDH, the Double Ratchet and SFrame call keys.

See ``spec/`` for the normative documents each module implements.
"""

__version__ = "0.1.0"
