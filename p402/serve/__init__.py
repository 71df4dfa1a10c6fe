"""``p402 serve``: the live ledger over HTTP. The meter API, the routing proxy, the controller's
read routes and a small HTML page, every route scoped to the tenant of the caller's key."""
