"""Meetings about a case (支援会議, 重層的支援会議, 地域ケア会議, ケース会議): their commands,
read model and views. The rules are in ``domain/meeting.py``; routes in ``api/meetings.py``."""
