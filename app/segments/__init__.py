"""Segments: saved audience rules with a builder that shows the live count of eligible contacts."""
