"""The person index: one internal person for a child's NHS number, UPN and LA person ids
(issue 6). So far its matching rules (matching.py); storage and the agency services' use of
it come with the agency adapters."""
