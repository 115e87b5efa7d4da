"""`clarion tokens …`: manage API tokens."""

from __future__ import annotations

import click

from app.auth.models import ApiToken, Role
from app.auth.services import all_tokens, create_token, revoke_token
from app.extensions import db


@click.group("tokens")
def tokens_cli() -> None:
    """Create, list and revoke API tokens."""


@tokens_cli.command("create")
@click.option("--name", required=True, help="Who or what uses the token.")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
def create_command(name: str, role: str) -> None:
    """Create a token and print it once; only its hash is kept."""
    token, secret = create_token(name, role)
    db.session.commit()
    click.echo(secret)
    click.echo(
        f"(token #{token.id} '{name}', role {role}; store it now, it is not shown again)", err=True
    )


@tokens_cli.command("list")
def list_command() -> None:
    """List tokens (never their secrets)."""
    for token in all_tokens():
        state = "revoked" if token.revoked_at else "active"
        click.echo(f"{token.id}\t{token.prefix}…\t{token.role.value}\t{state}\t{token.name}")


@tokens_cli.command("revoke")
@click.argument("token_id", type=int)
def revoke_command(token_id: int) -> None:
    """Revoke a token by id."""
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise click.ClickException(f"No token with id {token_id}.")
    revoke_token(token)
    db.session.commit()
    click.echo(f"Revoked token {token_id}.")
