"""The embedded identity provider for development: named users, their tokens, its JWKS."""
