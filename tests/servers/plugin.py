"""Placeholder until the server harness lands."""
