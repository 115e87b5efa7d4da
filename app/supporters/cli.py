"""`clarion supporters …`: import and export supporters."""

from __future__ import annotations

import click
from flask import current_app

from app.extensions import db
from app.supporters import importer
from app.supporters.csvencoding import EncodingError, codec_name, describe
from app.supporters.exporter import ExportError, export_supporters
from app.supporters.importer import rejections_csv
from app.supporters.models import SupporterImport


@click.group("supporters")
def supporters_cli() -> None:
    """Import and export supporters."""


@supporters_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--list", "list_name", help="Add every imported supporter to this list.")
@click.option("--tag", "tags", multiple=True, help="Tag every imported supporter (repeatable).")
@click.option("--source", help="Source for new supporters whose row has none.")
@click.option("--background", is_flag=True, help="Queue the import for a worker instead.")
@click.option(
    "--encoding",
    callback=lambda _ctx, _param, value: _codec(value),
    help="The file's text encoding (utf-8, cp1252, utf-16 …); detected when not given.",
)
def import_command(path, list_name, tags, source, background, encoding) -> None:
    """Import supporters from a CSV file (UTF-8, UTF-16 or Windows-1252, detected)."""
    settings = current_app.config["CLARION"]
    if background:
        with open(path, "rb") as f:
            supporter_import = importer.create_import(
                f,
                click.format_filename(path).rsplit("/", 1)[-1],
                list_name=list_name,
                tag_names=list(tags),
                source=source,
                created_by="cli",
                settings=settings,
                encoding=encoding,
            )
        db.session.commit()
        click.echo(f"Queued import {supporter_import.id}; a worker on the imports queue runs it.")
        return

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(),
        transient=True,
    ) as bar:
        task = bar.add_task("Importing rows", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        supporter_import = importer.import_file(
            path,
            list_name=list_name,
            tag_names=tags,
            source=source,
            created_by="cli",
            settings=settings,
            progress=progress,
            encoding=encoding,
        )
    _summarise(supporter_import)


def _codec(value: str | None) -> str | None:
    try:
        return codec_name(value) if value else None
    except EncodingError as exc:
        raise click.BadParameter(str(exc)) from None


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _summarise(supporter_import) -> None:
    if supporter_import.status != "done":
        raise click.ClickException(f"Import {supporter_import.id} failed: {supporter_import.error}")
    click.echo(
        f"Import {supporter_import.id} done: {supporter_import.created_count} created, "
        f"{supporter_import.updated_count} updated, {supporter_import.unchanged_count} unchanged, "
        f"{supporter_import.rejected_count} rejected ({supporter_import.processed_rows} rows)."
    )
    click.echo(f"Read as {describe(supporter_import.encoding)} text.")
    if supporter_import.rejected_count:
        click.echo(
            f"Rejected rows and why: clarion supporters import-errors {supporter_import.id} "
            "-o rejected.csv"
        )


@supporters_cli.command("import-errors")
@click.argument("import_id", type=int)
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-")
def import_errors_command(import_id, output) -> None:
    """Write the rows an import rejected, with their row numbers and reasons, as CSV."""
    if db.session.get(SupporterImport, import_id) is None:
        raise click.ClickException(f"There is no import {import_id}.")
    for piece in rejections_csv(import_id):
        output.write(piece)


@supporters_cli.command("export")
@click.option("--list", "list_name", help="Only supporters on this list.")
@click.option("--segment", "segment_id", type=int, help="Only supporters in this saved segment.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default="-")
def export_command(list_name, segment_id, output) -> None:
    """Export supporters as CSV (to standard output unless -o is given)."""
    try:
        pieces = export_supporters(list_name=list_name, segment_id=segment_id)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    if output == "-":
        for piece in pieces:
            click.echo(piece, nl=False)
        return
    with open(output, "w", encoding="utf-8", newline="") as f:
        for piece in pieces:
            f.write(piece)
