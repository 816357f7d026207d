"""Tests for app/auth."""
