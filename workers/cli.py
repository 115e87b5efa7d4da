"""`clarion worker`: run an RQ worker on Clarion's queues."""

import click


@click.command("worker")
def worker_command() -> None:
    """Run an RQ worker on Clarion's named queues."""
    raise click.ClickException("not yet")
