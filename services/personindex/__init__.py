"""The person index: one internal person for a child's NHS number, UPN and LA person ids.
Its matching rules are pure (``matching.py``); its store keeps keyed hashes and the sealed
identity, never an identifier in clear (docs/person-index.md)."""
