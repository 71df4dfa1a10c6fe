"""``python -m p402``: the same command line as ``p402``."""

from __future__ import annotations

from p402.cli import main

if __name__ == "__main__":
    main()
