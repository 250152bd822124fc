"""modelswitch: one conversation, many models."""

__version__ = "0.1.0"
