"""A lead's statuses, defined once: routing, the SLA ladder, reports and the one-tap actions all
ask here whether a lead is still work.

leadbot moves a lead through new -> assigned | pool -> claimed; after that its status is the
CRM's (stage changes, won/lost, ...), arriving through crm_bridge. A status in CLOSED is done
with: never (re)routed, no SLA reminders, not counted as anyone's load or as open in the digest.
Every other status, including ones a CRM invents, is open.
"""

from __future__ import annotations

# leadbot's own part of the life cycle: the statuses a claim, pass or reassign tap acts on.
WORKING = ("new", "assigned", "pool", "claimed")
# Offered to someone (or no one yet) and not picked up: what a first-touch escalation is about.
UNCLAIMED = ("new", "assigned")
CLOSED = ("won", "lost", "closed", "merged", "invalid", "spam", "archived")
