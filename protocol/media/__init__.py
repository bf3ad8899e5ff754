"""Call media protection: RFC 9605 SFrame (spec/sframe.md) and its call keys."""
