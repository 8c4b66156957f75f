"""The fourth held-out query set yields one distinct query for every finding the generator can draw."""

from __future__ import annotations

from benchmarks.search_queries_v4 import FORMS, v4_form, v4_query
from pipelines.synthetic.documents import all_findings, iter_texts


def test_every_finding_yields_a_distinct_query_in_one_of_the_four_forms():
    findings = list(all_findings())
    queries = {f.key: v4_query(f) for f in findings}
    assert all(q.strip() and "{" not in q and 3 <= len(q.split()) <= 18 for q in queries.values())
    assert len(set(queries.values())) == len(queries)
    assert {v4_form(f) for f in findings} == set(FORMS)
    for _, _, finding in iter_texts(40, seed=3):
        assert v4_query(finding) == queries[finding.key]  # the same query for a finding, every time
