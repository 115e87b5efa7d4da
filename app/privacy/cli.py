"""`clarion supporters erase` and `clarion supporters export-data`: GDPR requests from the shell.

Added to the `supporters` group by app/cli.py; they live here because they reach every domain.
"""

from __future__ import annotations

import json

import click

from app import privacy
from app.extensions import db
from app.supporters.models import Supporter


def _supporter_or_fail(supporter_id: int) -> Supporter:
    supporter = db.session.get(Supporter, supporter_id)
    if supporter is None:
        raise click.ClickException(f"There is no supporter {supporter_id}.")
    return supporter


@click.command("erase")
@click.argument("supporter_id", type=int)
@click.option("--yes", is_flag=True, help="Erase without asking first.")
def erase_command(supporter_id, yes) -> None:
    """Erase a supporter everywhere (GDPR right to erasure); mailing and campaign counts stay."""
    supporter = _supporter_or_fail(supporter_id)
    if not yes:
        click.confirm(
            f"Erase supporter {supporter_id} ({supporter.email})? This cannot be undone.",
            abort=True,
        )
    privacy.erase_supporter(supporter)
    db.session.commit()
    click.echo(f"Erased supporter {supporter_id}.")


@click.command("export-data")
@click.argument("supporter_id", type=int)
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-")
def export_data_command(supporter_id, output) -> None:
    """Write everything stored about a supporter as JSON (GDPR access request)."""
    export = privacy.export_supporter(_supporter_or_fail(supporter_id))
    json.dump(export, output, indent=2, ensure_ascii=False)
    output.write("\n")


supporter_commands = (erase_command, export_data_command)
