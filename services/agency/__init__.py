"""What every agency service (education, social care, health) shares: authentication per
agency, the outbox-backed publishing of canonical events with Idempotency-Key, and the
agency's own inbox, decrypted with its key."""
