"""Contacts: searching contacts, a timeline of every message in and out, unsubscribe and exclude toggles, and CSV import."""
