"""Thin ZenML steps: each wires one piece of the plain-Python core in `zenloop`.

Importing the package drops ZenML's log messages that never apply to zenloop (see
`steps.log_filters`): every process that runs a zenloop step imports it.
"""

from steps.log_filters import install

install()
