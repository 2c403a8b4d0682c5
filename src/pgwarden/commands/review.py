"""`pgwarden review`: evidence for an access review: who can read or write what, and by which path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pgwarden.cli import (
    EXIT_ERROR,
    EXIT_OK,
    config_option,
    databases_option,
    dsn_option,
    format_option,
    load_targets,
    single_target,
    ui_of,
)
from pgwarden.commands._output import output_option, print_errors, write_output
from pgwarden.errors import PgwardenError

if TYPE_CHECKING:
    from pgwarden.access.review import Review

#: pgwarden.render.review.FORMATS, written out so that `--help` does not import the renderers
REVIEW_FORMATS = ("markdown", "md", "json", "csv", "html")


@click.command(
    "review",
    help="""Evidence for an access review: per database, every table, column, sequence and routine
of the managed schemas (the columns the policy labels first), each role that can read or write it
and every path, with the chain spelled out (alice → analysts → pg_read_all_data): grants, column
grants, memberships, PUBLIC, predefined roles, ownership, superusers, and views, materialized views,
rules, parent tables, SECURITY DEFINER routines and triggers that expose an object with another
role's rights. Changes nothing.

\b
  pgwarden review                               # Markdown
  pgwarden review --format json -o review.json  # with the server's system identifier, the policy's digest, the time
  pgwarden review --format html -o review.html  # one self-contained page
  pgwarden review --format csv > review.csv
  pgwarden review --since review.json           # what access appeared and disappeared since

Several databases: JSON gives one envelope, CSV one table, Markdown a section per database; html
needs one database (-d).

Exit codes: 0 the review was written, 2 it could not be.""",
)
@config_option
@dsn_option
@databases_option
@format_option(*REVIEW_FORMATS, default="markdown")
@click.option(
    "--since",
    "since_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="An earlier `review --format json` file: also show exactly which paths appeared and disappeared since.",
)
@output_option
@click.pass_context
def command(
    ctx: click.Context,
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    jobs: int,
    fmt: str,
    since_path: str | None,
    output: str | None,
) -> int:
    from pgwarden.access.review import build_review, since
    from pgwarden.multi import run_over
    from pgwarden.policy import Policy
    from pgwarden.render import database_progress
    from pgwarden.session import Session

    ui = ui_of(ctx)
    targets = load_targets(config, None, dsn, databases)
    if len(targets) > 1 and fmt == "html":
        single_target(targets, "review --format html")  # raises: one page per database
    earlier = _earlier(since_path) if since_path else None

    def one(policy: Policy) -> Review:
        with Session.open(dsn, policy) as session:
            review = build_review(session)
        return since(review, earlier) if earlier is not None else review

    if len(targets) == 1:
        write_output(ui, _render([one(next(iter(targets.values())))], fmt), output)
        return EXIT_OK
    with database_progress(ui, "reviewing databases") as progress:
        outcomes = run_over(targets, one, jobs=jobs, on_done=progress)
    reviews = [o.result for o in outcomes if o.result is not None]
    if fmt == "json":
        from pgwarden.render import envelope

        summary = {"databases": len(outcomes), "errors": sum(1 for o in outcomes if o.error is not None)}
        text = json.dumps(envelope(outcomes, lambda r: r.to_json(), summary), indent=2, ensure_ascii=False) + "\n"
    else:
        text = _render(reviews, fmt)
    write_output(ui, text, output)
    return EXIT_ERROR if print_errors(ui, outcomes) else EXIT_OK


def _render(reviews: list[Review], fmt: str) -> str:
    from pgwarden.render.review import render_review, review_csv

    if fmt == "csv":
        return review_csv(reviews)
    return "\n".join(render_review(r, fmt) for r in reviews)


def _earlier(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PgwardenError(f"cannot read {path}: {exc.strerror}", hint="give --since an existing file") from None
    except ValueError as exc:
        raise PgwardenError(
            f"{path} is not JSON: {exc}", hint="give --since a file written by `pgwarden review --format json`"
        ) from None
    if not isinstance(data, dict) or not ("access" in data or "databases" in data):
        raise PgwardenError(
            f"{path} is not a review", hint="give --since a file written by `pgwarden review --format json`"
        )
    return data
