"""The ``fast`` extra: vectors read straight into float32 (pysimdjson).

Each path is checked against the plain one (orjson, asyncio) on the same server answers:
the same vectors to the bit, the same error rows for every malformed answer.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import embed_df, frame
from endpointr.providers import matrix
from endpointr.providers.matrix import float_matrix
from endpointr.testing import FakeServer, Fault

pytestmark = pytest.mark.skipif(not matrix.FAST_JSON, reason="pysimdjson is not installed")

floats = st.floats(width=32, allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda w: st.lists(st.lists(floats, min_size=w, max_size=w), min_size=1, max_size=8)
    )
)
def test_a_matrix_reads_as_the_json_path_reads_it(rows: list[list[float]]) -> None:
    body = orjson.dumps(rows)
    fast = float_matrix(body)
    assert fast is not None and fast.dtype == np.float32
    np.testing.assert_array_equal(fast, np.asarray(orjson.loads(body), dtype=np.float32))


@pytest.mark.parametrize(
    "body",
    [
        b"[[1,2],[3]]",  # ragged
        b"[[[1,2]],[[3,4]]]",  # token embeddings (3-D)
        b"[[1,2],[[3],4]]",  # a nested list inside a row
        b"[[1,2],[3,[4]]]",
        b'[[1,"a"],[3,4]]',  # a string
        b'[["[",2],[3,4]]',
        b"[[null,2],[3,4]]",
        b"[[true,2],[3,4]]",
        b'[[1,{"a":2}],[3,4]]',
        b"[1,2,3]",  # one flat vector: the JSON path's job
        b"[]",
        b"[[]]",
        b'{"error":"x"}',
        b"[[1,2],[3,4]] trailing",
        b"[[1,2],[3,4]",
        b"[[1e400,2]]",
        b"",
    ],
)
def test_anything_but_a_plain_matrix_is_left_to_the_json_path(body: bytes) -> None:
    assert float_matrix(body) is None


def test_a_parser_is_free_again_after_every_kind_of_body() -> None:
    for body in (b"[[1,2],[3]]", b'[[1,"a"]]', b"{}", b"[[1,2]] x"):
        assert float_matrix(body) is None
        np.testing.assert_array_equal(float_matrix(b"[[1,2]]"), [[1.0, 2.0]])


BAD_ANSWERS = [
    [[0.5, 0.25], [1.0]],
    [[[0.5, 0.25]], [[1.0, 2.0]]],
    [[0.5, "x"], [1.0, 2.0]],
    [[0.5, None], [1.0, 2.0]],
    [[0.5, 0.25]],  # one vector for two rows
    {"embeddings": [[0.5, 0.25], [1.0, 2.0]]},
]


@pytest.mark.parametrize("answer", BAD_ANSWERS, ids=lambda a: orjson.dumps(a).decode()[:24])
def test_a_malformed_answer_gives_the_same_error_rows_either_way(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, answer: object
) -> None:
    seen = []
    for fast in (True, False):
        monkeypatch.setattr(matrix, "FAST_JSON", fast)
        server.reset()
        server.script(Fault.status(200, body=answer))
        out = embed_df(server, frame(2), batch_size=2, max_retries=0)
        assert out[".error"].all(), out
        seen.append(list(out[".error_msg"]))
    assert seen[0] == seen[1]


def test_good_answers_are_the_same_vectors_either_way(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    outs = []
    for fast in (True, False):
        monkeypatch.setattr(matrix, "FAST_JSON", fast)
        out = embed_df(server, frame(37), batch_size=8, dedupe=False)
        assert not out[".error"].any()
        outs.append(np.stack(out["embedding"].to_list()))
    assert outs[0].dtype == np.float32
    np.testing.assert_array_equal(outs[0], outs[1])
    assert len(server.stats.requests) == 2 * 5
