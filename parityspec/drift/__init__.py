"""Per-layer drift: find the first layer where a converted model departs from the original."""
