"""Live-ledger commands: ``serve``, ``tenant``, ``apikey``, ``db`` and ``retention``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from p402.cli._common import cli, config_option, db_option, echo_json, json_option

__all__ = ["apikey", "db", "retention", "serve", "tenant"]

key_option = click.option(
    "--key", "key_path", type=click.Path(path_type=Path, dir_okay=False), envvar="P402_SIGNING_KEY",
    default=None, help="Ed25519 private key that signs audits and ledger entries. [env P402_SIGNING_KEY]",
)  # fmt: skip


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8402, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (each with its own database connections).")  # fmt: skip
@click.option(
    "--data-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("p402-data"),
    show_default=True, help="Where audits requested through the API are written.",
)  # fmt: skip
@db_option
@config_option
@key_option
def serve(
    *, host: str, port: int, workers: int, data_dir: Path, db: str | None, config_path: Path | None,
    key_path: Path | None,
) -> None:  # fmt: skip
    """Run the live ledger: meter API, routing proxy, audits and the HTML page.

    OpenAPI is published at /openapi.json. Every route needs a tenant's API key
    (p402 apikey create --tenant T).
    """
    import uvicorn

    from p402.bundles.signing import load_signing_key
    from p402.config import load_config
    from p402.ledger.audit_jobs import abandon_jobs
    from p402.ledger.store import Ledger

    config = load_config(config_path)  # refuse a bad configuration here, once, not in every worker
    ledger = Ledger.open(db)  # create, or refuse an outdated schema, before listening
    try:
        if abandoned := abandon_jobs(ledger):
            click.echo(
                f"{abandoned} audit(s) left unfinished by an earlier run marked failed", err=True
            )
    finally:
        ledger.close()
    for upstream in config.upstreams:
        if upstream.api_key_env and upstream.api_key() is None:
            click.echo(
                f"warning: {upstream.api_key_env} is not set: {upstream.provider} calls that bring"
                " no provider key of their own will be refused by the upstream",
                err=True,
            )
    if key_path is not None:
        load_signing_key(key_path)
    os.environ.update({"P402_DATA_DIR": str(data_dir.resolve())})
    for name, value in (("P402_DATABASE_URL", db), ("P402_CONFIG", config_path),
                        ("P402_SIGNING_KEY", key_path)):  # fmt: skip
        if value is not None:
            os.environ[name] = str(Path(value).resolve()) if isinstance(value, Path) else value
    click.echo(f"p402 serving on http://{host}:{port} (OpenAPI at /openapi.json)", err=True)
    if key_path is None:
        click.echo("no --key: audits cannot be signed, so POST /v1/audits answers 503", err=True)
    uvicorn.run(
        "p402.serve.app:from_environment", factory=True, host=host, port=port, workers=workers,
        log_level="warning", access_log=False, server_header=False,
    )  # fmt: skip


@cli.group()
def tenant() -> None:
    """Manage the tenants of a live ledger."""


@tenant.command("create")
@click.argument("tenant_id")
@click.option("--name", default=None, help="Display name.")
@click.option("--retention-days", type=click.IntRange(min=1), default=None,
              help="Keep events this many days; `p402 retention enforce` deletes older ones.")  # fmt: skip
@click.option("--client-retention", is_flag=True,
              help="Let meter clients keep an event for less (retention_until), never for more.")  # fmt: skip
@db_option
def tenant_create(
    *, tenant_id: str, name: str | None, retention_days: int | None, client_retention: bool,
    db: str | None,
) -> None:  # fmt: skip
    """Register TENANT_ID."""
    from p402.ledger.store import Ledger
    from p402.ledger.tenants import create_tenant

    ledger = Ledger.open(db)
    try:
        created = create_tenant(
            ledger, tenant_id, name=name, retention_days=retention_days,
            client_retention=client_retention,
        )  # fmt: skip
    finally:
        ledger.close()
    kept = f"kept {created.retention_days} days" if created.retention_days else "kept indefinitely"
    click.echo(f"Created tenant {created.tenant} (events {kept}).")
    click.echo(f"Next: p402 apikey create --tenant {created.tenant}")


@tenant.command("list")
@db_option
@json_option
def tenant_list(*, db: str | None, as_json: bool) -> None:
    """List the registered tenants."""
    from p402.ledger.store import Ledger, ledger_exists
    from p402.ledger.tenants import list_tenants

    found = []
    if ledger_exists(db):  # no ledger yet: no tenants, and none is created to say so
        ledger = Ledger.open(db)
        try:
            found = list_tenants(ledger)
        finally:
            ledger.close()
    if as_json:
        echo_json([{"tenant": t.tenant, "name": t.name, "retention_days": t.retention_days,
                    "created_at": t.created_at.isoformat()} for t in found])  # fmt: skip
        return
    if not found:
        click.echo("No tenants yet: p402 tenant create ID", err=True)
    for item in found:
        days = f"{item.retention_days} days" if item.retention_days else "indefinitely"
        click.echo(f"{item.tenant}\t{item.name or ''}\tkept {days}")


@tenant.command("delete")
@click.argument("tenant_id")
@click.option(
    "--confirm", required=True, metavar="TENANT_ID", help="The tenant id again, to confirm."
)
@click.option("--export", "export_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="First write the tenant's whole ledger to this file (JSON Lines).")  # fmt: skip
@click.option("--certificate", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write a signed deletion certificate here (needs --key).")  # fmt: skip
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("p402-data"),
              show_default=True, help="p402 serve's folder: the tenant's audits there are deleted too.")  # fmt: skip
@key_option
@db_option
@json_option
def tenant_delete(
    *, tenant_id: str, confirm: str, export_path: Path | None, certificate: Path | None,
    data_dir: Path, key_path: Path | None, db: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Delete TENANT_ID: every row of it, in every table. Cannot be undone."""
    import hashlib

    from p402.audit.lifecycle import delete_tenant
    from p402.bundles.signing import load_signing_key
    from p402.errors import ConfigError
    from p402.ledger.store import Ledger
    from p402.ledger.tenants import tenant_row_counts

    if confirm != tenant_id:
        raise ConfigError(
            f"--confirm {confirm!r} does not match the tenant {tenant_id!r}; nothing was deleted"
        )
    if certificate is not None and key_path is None:
        raise ConfigError(
            "--certificate needs --key: the certificate is signed; nothing was deleted"
        )
    if certificate is not None and certificate.exists():
        raise ConfigError(f"{certificate} exists; nothing was deleted")
    key = None if key_path is None else load_signing_key(key_path)
    ledger = Ledger.open(db, existing=True)
    try:
        if (
            not any(tenant_row_counts(ledger, tenant_id).values())
            and not (data_dir / "audits" / tenant_id).is_dir()
        ):
            raise ConfigError(f"tenant {tenant_id!r} has no rows in this ledger; nothing to delete")
        from p402.ledger.tenants import revoke_all_keys

        revoke_all_keys(ledger, tenant_id)  # before the export: no new key lookups from here
        exported = None
        if export_path is not None:
            from p402.ledger.export import export_ledger

            written = export_ledger(
                ledger, tenant=tenant_id, period=None, fmt="jsonl", out=export_path
            )
            digest = hashlib.sha256(export_path.read_bytes()).hexdigest()
            exported = {"file": export_path.name, "sha256": digest, "events": written.count}
            click.echo(f"Exported {written.count:,} events to {export_path}", err=True)
        deleted, signed = delete_tenant(ledger, tenant_id, key=key, export=exported)
        left = tenant_row_counts(ledger, tenant_id)
        audits = data_dir / "audits" / tenant_id  # bundles built by p402 serve hold its ledger
        if audits.is_dir():
            import shutil

            deleted["audit files"] = sum(1 for path in audits.rglob("*") if path.is_file())
            shutil.rmtree(audits)
    finally:
        ledger.close()
    if certificate is not None and signed is not None:
        from p402.bundles.canonical import dumps

        certificate.write_bytes(dumps(signed) + b"\n")
    if as_json:
        echo_json({"tenant": tenant_id, "deleted": deleted, "left": left, "certificate": signed})
        return
    parts = ", ".join(f"{n:,} {table}" for table, n in deleted.items() if n)
    click.echo(f"Deleted tenant {tenant_id}: {parts}. Nothing of it is left.")
    if certificate is not None:
        click.echo(
            f"Signed deletion certificate: {certificate} (check it: p402 verify-entry {certificate} --key PUB)"
        )


@cli.group()
def apikey() -> None:
    """Manage a tenant's API keys for p402 serve."""


@apikey.command("create")
@click.option("--tenant", "tenant_id", required=True, help="The tenant the key belongs to.")
@click.option("--label", default=None, help="What the key is for (shown in lists).")
@click.option(
    "--attribution", "fixed", multiple=True, metavar="FIELD=VALUE",
    help="Attribution every call and event of the key is recorded with, which no header or "
    "event can change: department=Support (repeat for several fields).",
)  # fmt: skip
@db_option
def apikey_create(
    *, tenant_id: str, label: str | None, fixed: tuple[str, ...], db: str | None
) -> None:
    """Create a key; it is printed once and only its hash is kept."""
    from p402.ledger.store import Ledger
    from p402.ledger.tenants import create_api_key

    attribution: dict[str, str] = {}
    for item in fixed:
        name, sign, value = item.partition("=")
        if not sign or name.strip() in attribution:
            raise click.BadParameter(
                f"{item!r}: give each field once, as FIELD=VALUE", param_hint="--attribution"
            )
        attribution[name.strip()] = value
    ledger = Ledger.open(db, existing=True)
    try:
        key, text = create_api_key(ledger, tenant_id, label=label, attribution=attribution)
    finally:
        ledger.close()
    click.echo(text)
    bound = "".join(f", always {name} {value!r}" for name, value in (key.attribution or {}).items())
    click.echo(
        f"key id {key.key_id} for tenant {key.tenant}{bound}: store it now, it is not shown again",
        err=True,
    )


@apikey.command("list")
@click.option("--tenant", "tenant_id", required=True)
@db_option
def apikey_list(*, tenant_id: str, db: str | None) -> None:
    """List a tenant's keys (ids and labels; never secrets)."""
    from p402.ledger.store import Ledger
    from p402.ledger.tenants import list_api_keys

    ledger = Ledger.open(db, existing=True)
    try:
        keys = list_api_keys(ledger, tenant_id)
    finally:
        ledger.close()
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        fixed_to = ", ".join(f"{n}={v}" for n, v in (key.attribution or {}).items())
        click.echo(
            f"{key.key_id}\t{state}\tcreated {key.created_at:%Y-%m-%d}\t{key.label or ''}"
            + (f"\t{fixed_to}" if fixed_to else "")
        )


@apikey.command("revoke")
@click.argument("key_id")
@click.option("--tenant", "tenant_id", required=True)
@db_option
def apikey_revoke(*, key_id: str, tenant_id: str, db: str | None) -> None:
    """Revoke KEY_ID; it stops working at once (restart running servers that cached it)."""
    from p402.ledger.store import Ledger
    from p402.ledger.tenants import revoke_api_key

    ledger = Ledger.open(db, existing=True)
    try:
        revoke_api_key(ledger, tenant_id, key_id)
    finally:
        ledger.close()
    click.echo(f"Revoked key {key_id} of tenant {tenant_id}.")


@cli.group()
def db() -> None:
    """Manage the ledger database."""


@db.command("upgrade")
@db_option
def db_upgrade(*, db: str | None) -> None:
    """Bring the ledger's schema to this p402's version (Alembic migrations)."""
    from p402.ledger.store import Ledger

    ledger = Ledger.open(db, prepare=False)
    try:
        done = ledger.upgrade()
    finally:
        ledger.close()
    if done.before is None:
        click.echo(f"Created a new ledger at schema version {done.after}.")
    elif done.changed:
        click.echo(f"Upgraded the ledger from schema version {done.before} to {done.after}.")
    else:
        click.echo(f"The ledger is already at schema version {done.after}.")


@cli.group()
def retention() -> None:
    """Apply tenants' retention periods."""


@retention.command("enforce")
@click.option(
    "--tenant", "tenant_ids", multiple=True, help="Tenant to purge (again for more); default all."
)
@key_option
@db_option
@json_option
def retention_enforce(
    *, tenant_ids: tuple[str, ...], key_path: Path | None, db: str | None, as_json: bool
) -> None:
    """Delete expired events, recording each purge as a signed ledger entry."""
    from p402.audit.lifecycle import enforce_retention
    from p402.bundles.signing import load_signing_key
    from p402.errors import ConfigError
    from p402.ledger.store import Ledger
    from p402.ledger.tenants import list_tenants
    from p402.money import format_amount, from_units

    if key_path is None:
        raise ConfigError(
            "--key is required: each purge is signed", hint="p402 keys create --out keys/"
        )
    key = load_signing_key(key_path)
    ledger = Ledger.open(db, existing=True)
    try:
        chosen = list(tenant_ids) or [t.tenant for t in list_tenants(ledger) if t.retention_days]
        purges = [enforce_retention(ledger, name, key=key) for name in chosen]
    finally:
        ledger.close()
    if as_json:
        echo_json([{"tenant": p.tenant, "deleted": p.count, "entry": p.entry} for p in purges])
        return
    for purge in purges:
        if purge.entry is None:
            click.echo(f"{purge.tenant}: nothing has expired")
        else:
            cost = format_amount(from_units(purge.cost_units))
            click.echo(f"{purge.tenant}: deleted {purge.count:,} expired events (cost {cost} USD); "
                       f"signed ledger entry {purge.entry['entry_id']}")  # fmt: skip
    if not purges:
        click.echo("no tenant has a retention period")
