"""Tests for app/browser."""
