"""Intake's application layer: one function per command. Routes (api/) and event
policies (policies.py) both call these; neither builds events itself."""
