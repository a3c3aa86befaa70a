"""The consent-and-policy service: protocols, the pure decision core and the stream processor."""
