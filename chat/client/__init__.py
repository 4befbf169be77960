"""The terminal IRC client: ``python -m chat.client``."""
