"""leadbot's own CRM records behind the CRMStore boundary (store.py, sql_store.py): leads, customers, reps
and teams, the state changes a tap makes (leads.py), the reports the scheduler reads, CSV imports.
crm_bridge/ keeps an existing CRM in step with them."""
