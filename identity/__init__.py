"""Identity resolution: normalisation, matching, merge (crm_bridge's de-duplication).

- normalize.py, company.py, names.py: pure normalisation of phones, emails, ids, addresses,
  company names and person names (Chinese and pinyin, WeChat remark noise, honorifics).
- matcher.py: Records (comparable features), the scoring of a pair and the decision
  same / possible / new, each with its evidence. Pure.
- index.py: the in-memory blocking index (a million customers, sub-millisecond matches).
- service.py: the async API on SqlCRMStore: match_contact, link_identity, create_customer_from_contact,
  find_duplicates, build_index, IdentityService; the lead-intake and import linking.
- merge.py: lossless merge, undo, mark_distinct.
- dedupe.py: batch de-duplication of a CSV (`leadbot dedupe`).
"""
