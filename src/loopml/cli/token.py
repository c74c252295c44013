"""``loopml token``: the API tokens of ``loopml server`` (create, list, revoke).

A token's secret is printed once, when it is made, and never stored: the store keeps its
SHA-256 (see ``loopml.store.tokens`` and ``docs/auth.md``). With ``--json`` the secret is
in the JSON on stdout and the "shown once" note goes to stderr, so a script can capture
stdout whole.
"""

from __future__ import annotations

import time
from typing import Any

import click

from loopml.cli.output import client, console, fmt_time, json_option, print_json, text

ROLES = ("reader", "writer", "admin")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_expiry(value: str) -> float:
    """``30d`` → seconds; minutes ``m``, hours ``h``, days ``d`` or weeks ``w``."""
    from loopml.errors import InvalidParameterError

    raw = value.strip().lower()
    number, unit = raw[:-1], raw[-1:]
    try:
        seconds = float(number) * _UNITS[unit]
    except (KeyError, ValueError):
        seconds = -1.0
    if not 0 < seconds <= 100 * 365 * 86400:
        raise InvalidParameterError(
            f"--expires: got {value!r}; expected a positive duration of at most 100 years "
            "with a unit, such as 90m, 12h, 30d or 8w."
        )
    return seconds


@click.group()
def token() -> None:
    """Manage the API tokens of `loopml server`: roles reader, writer, admin.

    \b
    Examples:
      loopml token create ci-bot --role writer --expires 90d
      loopml token list
      loopml token revoke ci-bot
    """


@token.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    required=True,
    help="reader reads; writer also changes things; admin also manages tokens and schedules.",
)
@click.option(
    "--expires",
    metavar="DURATION",
    help="Refuse the token after this long: 90m, 12h, 30d, 8w (default: never).",
)
@json_option
def create(name: str, role: str, expires: str | None, as_json: bool) -> None:
    """Create a token and print its secret once (the store keeps only its SHA-256)."""
    from loopml.registry.versions import who

    expires_at = None if expires is None else time.time() + parse_expiry(expires)
    c = client(readonly=False)
    record, secret = c.metadata.tokens.create(name, role, by=who(), expires_at=expires_at)
    if as_json:
        print_json({"name": record.name, "role": str(record.role), "token": secret})
    else:
        click.echo(secret)
    until = "" if expires_at is None else f", expires {fmt_time(expires_at)}"
    click.echo(
        f"Token {name!r} ({record.role}{until}): this is the only time it is shown; store it "
        "now (e.g. in your CI's secrets). Send it as 'Authorization: Bearer <token>'.",
        err=True,
    )


def _row(record: Any) -> dict[str, Any]:
    return record.to_dict()  # type: ignore[no-any-return]


@token.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List tokens: name, role, created, by, last used, expires, revoked (never the secret)."""
    records = client().metadata.tokens.list()
    if as_json:
        print_json([_row(r) for r in records])
        return
    if not records:
        console().print("No tokens yet. Create one with `loopml token create NAME --role reader`.")
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("name", "role", "created", "by", "last used", "expires", "revoked"):
        table.add_column(column, no_wrap=True)
    now = time.time()
    for r in records:
        expires = fmt_time(r.expires_at)
        if r.expires_at is not None and r.expires_at <= now:
            expires += " (expired)"
        table.add_row(
            text(r.name),
            str(r.role),
            fmt_time(r.created_at),
            text(r.created_by),
            fmt_time(r.last_used_at),
            expires,
            fmt_time(r.revoked_at),
        )
    console().print(table)


@token.command("revoke")
@click.argument("name")
@json_option
def revoke(name: str, as_json: bool) -> None:
    """Revoke a token: its next request is refused (401). The name stays taken, for audit."""
    record = client(readonly=False).metadata.tokens.revoke(name)
    if as_json:
        print_json(_row(record))
        return
    click.echo(f"Revoked token {name!r} ({record.role}) at {fmt_time(record.revoked_at)}.")
