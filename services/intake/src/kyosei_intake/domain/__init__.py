"""Intake's aggregates: pure decisions (commands -> events) and state (events -> state).

No I/O here. A decision that breaks a rule raises
:class:`kyosei_platform.application.Rejected` with a code and messages in English and
Japanese; routes answer it as a 4xx, policies dead-letter it.
"""
