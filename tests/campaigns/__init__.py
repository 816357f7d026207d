"""Tests for app/campaigns."""
