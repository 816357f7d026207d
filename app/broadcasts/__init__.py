"""Broadcasts: the upcoming broadcast with its first and follow-up texts, the weekly schedule, send now, and the history of past broadcasts with their delivery statistics."""
