"""`clarion supporters …`: import and export supporters."""

import click


@click.group("supporters")
def supporters_cli() -> None:
    """Import and export supporters."""
