"""The H5 action page behind every text-fallback link: GET /a/{token} and POST /a/{token}."""
