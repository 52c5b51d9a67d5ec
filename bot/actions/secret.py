"""The key that signs action tokens: `[server] secret_key` when set, else a random key made once
and kept in the database, so links survive restarts and every process signs alike."""

from __future__ import annotations

import hashlib
import secrets

from store.kv import KeyValueStore

KV_KEY = "actions.secret_key"


async def action_secret(configured: str, kv: KeyValueStore) -> bytes:
    if configured:
        # Stretch whatever the operator wrote into 32 bytes; the text itself never leaves here.
        return hashlib.sha256(configured.encode()).digest()
    stored = await kv.setdefault(KV_KEY, secrets.token_hex(32))
    return bytes.fromhex(stored)
