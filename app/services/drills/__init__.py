"""Disconnect drills (issue 17): the planned window (`lifecycle`), the checks Lifeline runs during it
(`checks`), drill time kept out of uptime and incidents (`uptime`), the report (`report`), what a
drill means for notifications (`notify`) and readiness (`readiness`)."""
