"""Tests for app/settings."""
