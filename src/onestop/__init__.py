"""OneStop: a self-hosted operations platform for IT outsourcing providers."""

__version__ = "0.1.0"
