"""LOOKUP: a default meaning "not given: read it yourself", for values a caller may already hold
(the lead's customer, its card deadline) where None is a real value (no customer, no deadline)."""

from typing import Any

LOOKUP: Any = object()
