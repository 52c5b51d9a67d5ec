"""The CRM bridge: keeps an existing CRM in step with leadbot, both ways.

- ``events``: the outbound change-event schema (``leadbot.change/1``) and its HMAC signature;
- ``capture``: turns every change leadbot commits into change events, in the same transaction;
- ``gate``: in-order delivery per entity and webhook URL;
- ``ownership``: which side owns which field;
- ``inbound``: upserts and commands from the CRM (never echoed back);
- ``resync``: ``leadbot crm pull`` and ``leadbot crm push --since``.

docs/crm_bridge.md is the receiver's guide.
"""
