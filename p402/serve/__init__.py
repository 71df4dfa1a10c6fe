"""``p402 serve``: the live ledger over HTTP. The meter API, the routing proxy, the controller's
read routes and a small HTML page, every route scoped to the tenant of the caller's key.

Usage, as each uvicorn worker of ``p402 serve`` builds it (:func:`~p402.serve.app.from_environment`
reads the same settings from ``P402_*`` variables)::

    from p402.config import load_config
    from p402.ledger import Ledger
    from p402.serve import Service, create_app

    app = create_app(Service(Ledger.open("postgresql://..."), load_config(None),
                             data_dir=Path("p402-data"), signing_key=Path("keys/p402-signing.key")))

Every event goes through the same pipeline as an import (:mod:`p402.ingest.pipeline`); errors
are answered in one shape (:mod:`p402.serve.errors`). Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p402 import lazy_names

if TYPE_CHECKING:  # the names as mypy sees them; at run time __getattr__ loads them
    from p402.serve.app import create_app, from_environment
    from p402.serve.service import Outcome, Service

__all__ = ["Outcome", "Service", "create_app", "from_environment"]

_HOMES = {
    "create_app": "app",
    "from_environment": "app",
    "Outcome": "service",
    "Service": "service",
}

__getattr__ = lazy_names(__name__, _HOMES)
