"""Serving results: read queries over a store (the REST API and dashboard come later)."""
