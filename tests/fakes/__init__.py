"""Fake provider HTTP servers (Twilio, Missive) used by engine tests and benchmarks."""
