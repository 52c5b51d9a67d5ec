"""Time: durable SLA timers, escalation ladders, stagnation scans and digests on APScheduler."""
