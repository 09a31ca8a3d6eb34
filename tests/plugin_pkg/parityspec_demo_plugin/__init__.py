"""A demo parityspec plugin: a `constant` backend and an `always_close` check."""
