"""Durable delivery: the outbox, delivery workers, per-recipient throttling, channel fallback.

Public API (bot/app.py wires it; nothing here imports bot handlers, platforms or the sandbox):
- ``store.outbox.OutboxRepo`` / ``NewOutboxItem`` / ``enqueue_in``: enqueue in the caller's
  transaction under a deterministic idempotency key; ``set_delivery`` for 文本模式 / 卡片模式.
- ``notifications.sender``: ``Sender`` protocol, ``OutboundMessage``, ``DeliveryResult``, ``dedupe_id``.
- ``notifications.worker.DeliveryWorker``: the delivery loop (start/stop/wake/run_once/drain).
- ``notifications.throttle.RecipientThrottle``: per-recipient platform limits with look-ahead.
- ``notifications.cli_report.outbox_report``: the `leadbot outbox` text.
"""
