"""Signing in and out, and the users who may."""
