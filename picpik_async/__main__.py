"""`python -m picpik_async`: the same as the `picpik` command."""

from __future__ import annotations

from picpik_async.cli import main

if __name__ == "__main__":
    main()
