"""The coordinator's board (cases by stage, overdue reviews, cases waiting for consent,
flagged and stalled cases, cases accompanied in 伴走), each agency's assigned actions,
and each case's timeline: read models built from coordination's events only, holding no
personal field. The outcomes other pillars send back (an outreach started or ended, a
participation match) reach the case as RequestOutcomeReceived."""
