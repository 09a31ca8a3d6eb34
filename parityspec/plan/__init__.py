"""Compiling a spec into a graph of steps, and showing it."""
