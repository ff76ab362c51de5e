"""The local stack and its commands (see stack.py)."""
