"""The event catalogue: one module per producing service. Importing this registers all."""

from . import community, coordination, intake, participation

__all__ = ["community", "coordination", "intake", "participation"]
