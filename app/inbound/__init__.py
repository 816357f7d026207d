"""Inbound SMS and the Missive mirror: what a webhook's payload does to our data (SPEC 6.5, 9)."""
