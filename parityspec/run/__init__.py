"""Executing a plan: the run context, the step handlers and the executor."""
