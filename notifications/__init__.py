"""Durable delivery: the outbox, delivery workers, per-recipient throttling, channel fallback."""
