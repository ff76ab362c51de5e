"""The local stack and its commands (see stack/__init__.py)."""
