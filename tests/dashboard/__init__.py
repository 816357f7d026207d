"""Tests for app/dashboard."""
