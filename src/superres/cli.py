"""The project's Kedro commands: ``kedro run`` is Kedro's own, except that an error the user can
fix (a :class:`~superres.errors.SuperresError`, raised by a node, a dataset or the pipeline
registry, also when Kedro wrapped it in one of its own exceptions) ends the run with one line on
stderr, naming the parameter or the file and what to do, and exit status 1; ``dvc repro`` shows
that line too. Any other exception keeps its traceback: it is a bug to report.

Kedro finds this module as ``<package>.cli`` and its ``run`` overrides the built-in one.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from superres.errors import SuperresError


def project_error(exc: BaseException) -> SuperresError | None:
    """The project's own error behind ``exc``: itself, or the one it was raised from (Kedro
    wraps errors of datasets and hooks in its own types), else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, SuperresError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def one_line(error: SuperresError) -> str:
    """The message of ``error`` on one line."""
    return " ".join(str(error).split()) or type(error).__name__


@click.group(name="superres")
def cli() -> None:
    """Commands of the superres project."""


def _run(**kwargs: Any) -> Any:
    try:
        return kedro_run.callback(**kwargs)
    except Exception as exc:
        error = project_error(exc)
        if error is None:
            raise
        click.echo(f"Error: {one_line(error)}", err=True)
        sys.exit(1)


run = click.Command(
    name="run",
    callback=_run,
    params=list(kedro_run.params),
    help=kedro_run.help,
    short_help=kedro_run.short_help,
)
cli.add_command(run)
