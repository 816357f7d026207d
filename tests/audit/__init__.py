"""Tests for app/audit."""
