"""onestop-agent: reports a machine's health and inventory to a OneStop server."""

__version__ = "0.1.0"
