"""Tests for app/jobs."""
