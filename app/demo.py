"""`clarion demo load`: demo data so a local run has something to work with."""

import click


@click.group("demo")
def demo_cli() -> None:
    """Demo data."""
