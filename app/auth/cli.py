"""`clarion tokens …` and `clarion users …`: API tokens and staff users, from a shell.

The shell is the way back in when the web app cannot help: the last admin lost their phone,
or mail does not reach anyone. Every change is in the audit log, by "cli".
"""

from __future__ import annotations

import sys

import click

from app.auth import accounts, totp
from app.auth.accounts import AccountError, all_users, create_user, generate_password
from app.auth.models import ApiToken, Role, StaffUser
from app.auth.services import all_tokens, create_token, revoke_token
from app.errors import DomainError
from app.extensions import db

CLI_ACTOR = "cli"


@click.group("tokens")
def tokens_cli() -> None:
    """Create, list and revoke API tokens."""


@tokens_cli.command("create")
@click.option("--name", required=True, help="Who or what uses the token.")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
def create_command(name: str, role: str) -> None:
    """Create a token and print it once; only its hash is kept."""
    try:
        token, secret = create_token(name, role, actor=CLI_ACTOR)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
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
    revoke_token(token, actor=CLI_ACTOR)
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
    password_mode, password = _new_password(password_mode)
    try:
        user = create_user(email, role, password=password, name=name, actor=CLI_ACTOR)
    except AccountError as exc:
        raise click.ClickException(exc.message) from exc
    db.session.commit()
    if password_mode == "generate":
        click.echo(password)
        click.echo(
            f"(staff user #{user.id} {user.email}, role {role}; the password is not shown again)",
            err=True,
        )
    else:
        click.echo(f"Created staff user #{user.id} {user.email} ({role}).")


def _new_password(mode: str | None) -> tuple[str, str]:
    """Ask for a password on a terminal (or when told to), otherwise generate one."""
    mode = mode or ("prompt" if sys.stdin.isatty() else "generate")
    if mode == "prompt":
        return mode, click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return mode, generate_password()


@users_cli.command("list")
def list_users_command() -> None:
    """List staff users (never their passwords)."""
    for user in all_users():
        state = "disabled" if user.disabled_at else "active"
        two_factor = "2fa" if user.has_two_factor else "-"
        click.echo(f"{user.id}\t{user.email}\t{user.role.value}\t{state}\t{two_factor}")


def _user(email: str) -> StaffUser:
    user = accounts.find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"No staff user with the email {email}.")
    return user


def _change(user: StaffUser, change, done: str) -> None:
    """Apply `change` to the user (it records itself in the audit log) and commit; a refusal
    becomes a CLI error."""
    try:
        change()
    except AccountError as exc:
        raise click.ClickException(exc.message) from exc
    db.session.commit()
    click.echo(f"{user.email}: {done}")


@users_cli.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice([r.value for r in Role]))
def set_role_command(email: str, role: str) -> None:
    """Change a user's role (they are signed out everywhere)."""
    user = _user(email)
    before = user.role
    _change(user, lambda: accounts.set_role(user, role, actor=CLI_ACTOR), f"{before} → {role}")


@users_cli.command("disable")
@click.argument("email")
def disable_command(email: str) -> None:
    """Stop a user signing in (they are signed out everywhere)."""
    user = _user(email)
    _change(user, lambda: accounts.disable_user(user, actor=CLI_ACTOR), "disabled")


@users_cli.command("enable")
@click.argument("email")
def enable_command(email: str) -> None:
    """Let a disabled user sign in again."""
    user = _user(email)
    _change(user, lambda: accounts.enable_user(user, actor=CLI_ACTOR), "enabled")


@users_cli.command("reset-two-factor")
@click.argument("email")
def reset_two_factor_command(email: str) -> None:
    """Turn two-factor sign-in off for a lost phone; they set it up again at next sign-in."""
    user = _user(email)
    _change(user, lambda: totp.reset_two_factor(user, actor=CLI_ACTOR), "two-factor reset")


@users_cli.command("set-password")
@click.argument("email")
@click.option(
    "--password",
    "password_mode",
    type=click.Choice(["prompt", "generate"]),
    default=None,
    help="Ask for the new password, or generate one and print it once.",
)
def set_password_command(email: str, password_mode: str | None) -> None:
    """Give a user a new password (they are signed out everywhere)."""
    user = _user(email)
    password_mode, password = _new_password(password_mode)
    _change(user, lambda: accounts.set_password(user, password, actor=CLI_ACTOR), "password set")
    if password_mode == "generate":
        click.echo(password)
