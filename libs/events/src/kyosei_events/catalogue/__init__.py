"""The event catalogue: one module per producing service. Importing this registers all."""

from . import coordination, intake, participation

__all__ = ["coordination", "intake", "participation"]
