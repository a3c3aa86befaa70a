"""The delivery service: subscriptions over what recipients receive on ``deliver.<agency>``,
pushed to webhooks or pulled from an inbox, each numbered once."""
