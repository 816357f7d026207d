"""Campaigns: one-off sends to segments and labels, an uploaded list, or personalized CSV rows: upcoming, new, history and results."""
