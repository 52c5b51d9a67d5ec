"""One-tap actions: signed action tokens, the action service behind cards, H5 page and commands."""
