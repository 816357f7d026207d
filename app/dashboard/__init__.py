"""The overview page: what is coming, what just happened, and whether the system is healthy."""
