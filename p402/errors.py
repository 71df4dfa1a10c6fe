"""The one exception root of p402, and its tree.

Every error a user can cause is a :class:`P402Error`: the CLI catches it in one place and prints
``error: <message>`` (plus the hint) on one line, with no traceback. Subclasses live next to the
code that raises them:

- ``P402Error``
    - ``ConfigError`` (here): bad command-line value, period, or setting.
    - ``p402.ledger.store.StoreError``: the ledger database cannot be opened or written.
    - ``p402.ingest.importer.ImportRejected``: an import file has problems (carries them all).
    - ``p402.bundles.signing.KeyError_``: a key file is missing, malformed or would be overwritten.
    - ``p402.bundles.verify.BundleInvalid``: a bundle failed verification (names the member).
"""

from __future__ import annotations

__all__ = ["ConfigError", "P402Error"]


class P402Error(Exception):
    """Root of every error p402 raises on purpose.

    Args:
        message: What went wrong, in one sentence that names the thing (file, line, field).
        hint: What the user can do about it, or ``None``.
    """

    exit_code = 2
    bare = False
    """Printed without the ``error:`` prefix (a verdict such as ``invalid: ...``)."""

    def __init__(
        self, message: str, *, hint: str | None = None, details: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or []
        """Lines printed before the message: each problem, when there are several."""

    def one_line(self) -> str:
        """The message and the hint on a single line, for a terminal."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(P402Error):
    """A command-line option, period or setting is not valid."""
