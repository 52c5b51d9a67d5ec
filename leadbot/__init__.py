"""leadbot's shared kernel: settings, clock, durations, masking and logging.

It imports none of bot/, crm_bridge/, notifications/ or scheduler/, so every package may use it.
"""

__version__ = "0.1.0"
