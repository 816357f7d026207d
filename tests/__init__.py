"""Broadcaster's tests: they mirror app/ and run against real PostgreSQL and Redis."""
