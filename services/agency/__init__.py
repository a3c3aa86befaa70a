"""What every agency service (education, social care, health) shares: the app factory and
API keys, the submission use case and its HTTP edge, and the agency's own inbox as a
recipient, fields encrypted to it opened with its key."""
