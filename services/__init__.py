"""infoshare's services: the agency services and what they share, the outbox and the person
index, delivery, audit, operating a running stack (``ops``), and the plumbing and contracts
every process shares (``backbone``). See docs/architecture.md."""
