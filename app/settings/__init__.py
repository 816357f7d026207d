"""Settings: transport status, sending rules, and the users who may sign in."""
