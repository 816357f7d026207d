"""The Missive sidebar: compact panels inside Missive's iframe (reusing the features' services and partials)."""
