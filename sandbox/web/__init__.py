"""The sandbox page: an aiohttp app (routes.py) serving one static page (static/) and a small
JSON + server-sent-events API over sandbox.demo.Demo, plus the routing playground."""
