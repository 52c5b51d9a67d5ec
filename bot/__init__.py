"""The IM side: aiohttp app, platform adapters, handlers, cards, H5 action pages, CLI."""
