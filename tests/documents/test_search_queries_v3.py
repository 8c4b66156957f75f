"""The third held-out query set covers every component, side, fluid and symptom the generator can draw."""

from __future__ import annotations

from benchmarks.documents import HELD_FLUIDS, HELD_SIDES, HELD_SYMPTOMS
from benchmarks.search_queries_v3 import V3_FLUIDS, V3_PARTS, V3_SIDES, V3_SYMPTOMS, v3_query
from pipelines.synthetic.documents import COMPONENTS, all_findings, iter_texts


def test_every_key_is_covered():
    assert set(V3_PARTS) == {c[1] for c in COMPONENTS}
    assert set(V3_SIDES) == set(HELD_SIDES)
    assert set(V3_FLUIDS) == set(HELD_FLUIDS)
    assert set(V3_SYMPTOMS) == set(HELD_SYMPTOMS)
    assert {s for c in COMPONENTS for s in c[3]} <= set(V3_SIDES)
    assert {c[4] for c in COMPONENTS} <= set(V3_FLUIDS)
    assert {s for c in COMPONENTS for s in c[5]} <= set(V3_SYMPTOMS)
    assert all("{x}" in t for t in V3_SYMPTOMS.values())


def test_every_finding_yields_a_query():
    queries = {f.key: v3_query(f) for f in all_findings()}
    assert all(q.strip() and "{" not in q for q in queries.values())
    assert len(set(queries.values())) == len(queries)  # distinct findings, distinct queries
    for _, _, finding in iter_texts(40, seed=3):
        assert v3_query(finding) == queries[finding.key]
