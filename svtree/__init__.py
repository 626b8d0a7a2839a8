"""svtree: a daemontools-style supervision tree."""

__version__ = "0.1.0"
