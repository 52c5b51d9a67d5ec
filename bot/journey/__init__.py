"""The lead's journey on the IM side: offers, card copies that follow their lead, notices (flow.py), the
views cards are built from (views.py), what an SLA step does (sla.py), merge taps (identity.py)."""
