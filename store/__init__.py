"""The store: the database (engine, SQLite driver, WAL checkpoints), the one metadata and migration chain,
and the durable primitives every feature writes through: inbox, outbox (with card copies), timers,
kv, leases, the send budget; DTOs and the rows they are made from. Imports nothing of leadbot but the kernel."""
