"""Tests for app/broadcasts."""
