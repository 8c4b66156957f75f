"""`tributary dashboard`: where the analysts' KPI page is (and, with --open, open it in the browser)."""

from __future__ import annotations

import sys
import webbrowser

import click

from pipelines.core.errors import Failure, one_line_errors
from pipelines.core.lake import LakeError
from pipelines.warehouse import DASHBOARD


def _errors() -> tuple[type[BaseException], ...]:
    from resources.profiles import ProfileError  # noqa: PLC0415 - a command-time import, like the others

    return LakeError, ProfileError, ValueError


@click.command("dashboard")
@click.option("--open", "open_it", is_flag=True, help="Open the page in the default browser (a local lake only).")
@one_line_errors(_errors)
def dashboard(open_it: bool) -> None:
    """Print the path of the KPI dashboard, one HTML page that opens offline (built by `tributary run`)."""
    from resources.lake_settings import plain_lake  # noqa: PLC0415 - a command-time import, like the others

    lake = plain_lake()
    if not lake.exists(DASHBOARD):
        raise Failure(f"no dashboard in the lake {lake.uri()} yet: `tributary run` builds it "
                      "(asset warehouse/kpi_dashboard)")
    where = lake.uri(DASHBOARD)
    click.echo(where)
    if open_it:
        if lake.scheme != "file":
            raise Failure(f"the dashboard is on S3 ({where}): copy it to open it (aws s3 cp {where} .)")
        webbrowser.open(f"file://{where}")


if __name__ == "__main__":
    sys.exit(dashboard())
