"""Tests for app/sending and app/integrations: the engine against fake provider servers."""
