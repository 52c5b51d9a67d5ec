"""Identity resolution: normalisation, matching, merge (crm_bridge's de-duplication)."""
