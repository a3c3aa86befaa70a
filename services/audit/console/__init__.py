"""The information governance console: server-rendered pages of the audit service for IG
officers signed in as themselves (pages.py is the entry point)."""
