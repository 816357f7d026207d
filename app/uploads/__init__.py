"""Uploads: every CSV file uploaded, its validation report, and the rows that were rejected."""
