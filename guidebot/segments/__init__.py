"""Saved customer segments (客户分群) and marking a tag on a segment's customers (批量打标签)."""
