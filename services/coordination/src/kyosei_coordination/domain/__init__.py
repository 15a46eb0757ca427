"""Coordination's aggregates: pure decisions (commands -> events) and state (events ->
state). No I/O here; a refusal is :class:`kyosei_platform.application.Rejected`."""
