"""Platform plumbing: audit log, domain events and live stream, API tokens (later: OIDC, webhooks, feed)."""
