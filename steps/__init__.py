"""Thin ZenML steps: each wires one piece of the plain-Python core in `zenloop`."""
