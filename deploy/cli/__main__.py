"""``python -m deploy.cli``: the ``infoshare`` command."""

from deploy.cli.main import app

if __name__ == "__main__":
    app()
