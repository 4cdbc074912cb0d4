"""操作日志: who in HQ changed what, and when (guidebot/audit/log.py)."""
