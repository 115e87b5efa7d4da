"""`clarion tokens …`: manage API tokens."""

from __future__ import annotations

import sys

import click

from app.auth import audit
from app.auth.accounts import AccountError, all_users, create_user, generate_password
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


@click.group("users")
def users_cli() -> None:
    """Create and list staff users of the web app."""


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", default="", help="The person's name, shown in the audit log.")
@click.option(
    "--password",
    "password_mode",
    type=click.Choice(["prompt", "generate"]),
    default=None,
    help="Ask for the password, or generate one and print it once (default: prompt on a "
    "terminal, generate otherwise).",
)
def create_user_command(email: str, role: str, name: str, password_mode: str | None) -> None:
    """Create a staff user who signs in at /staff/login."""
    if password_mode is None:
        password_mode = "prompt" if sys.stdin.isatty() else "generate"
    if password_mode == "prompt":
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = generate_password()
    try:
        user = create_user(email, role, password=password, name=name)
    except AccountError as exc:
        raise click.ClickException(exc.message) from exc
    audit.record(
        "cli",
        "user_created",
        subject_type="staff_user",
        subject_id=user.id,
        detail=f"{user.email} as {role}",
    )
    db.session.commit()
    if password_mode == "generate":
        click.echo(password)
        click.echo(
            f"(staff user #{user.id} {user.email}, role {role}; the password is not shown again)",
            err=True,
        )
    else:
        click.echo(f"Created staff user #{user.id} {user.email} ({role}).")


@users_cli.command("list")
def list_users_command() -> None:
    """List staff users (never their passwords)."""
    for user in all_users():
        state = "disabled" if user.disabled_at else "active"
        two_factor = "2fa" if user.has_two_factor else "-"
        click.echo(f"{user.id}\t{user.email}\t{user.role.value}\t{state}\t{two_factor}")
