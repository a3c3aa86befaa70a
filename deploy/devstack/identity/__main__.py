"""``python -m deploy.devstack.identity DIR PORT``: serve the embedded identity provider's
configuration and JWKS on 127.0.0.1:PORT (the local stack starts it)."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from deploy.devstack.identity.server import create_app


def main() -> None:
    directory, port = Path(sys.argv[1]), int(sys.argv[2])
    uvicorn.run(create_app(directory), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
