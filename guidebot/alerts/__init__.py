"""Notices to a guide about their customers, each switched per tenant in
`[tenants.<id>.alerts]`: a customer deleting the guide (删人提醒, alerts/churn.py)."""
