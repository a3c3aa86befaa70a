"""Sharing protocols as files: parse them strictly, check them, load a set, explain it in
plain language, and simulate it over events (a dry run that writes nothing)."""
