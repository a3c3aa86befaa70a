"""The consent-and-policy stream processor: source topics in, deliveries and audit out."""
