"""superres: a reproducible super-resolution lab."""

__version__ = "0.1.0"
