"""Notices to a guide about their customers, each switched per tenant in
`[tenants.<id>.alerts]`: a customer deleting the guide (删人提醒, alerts/churn.py) and a
customer opening a card the guide sent (互动雷达, alerts/radar.py) and, once a day, the
guide's day (导购早报, alerts/digest.py)."""
