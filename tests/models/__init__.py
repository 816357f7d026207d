"""Tests for app/models."""
