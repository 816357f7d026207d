"""Tests for app/system."""
