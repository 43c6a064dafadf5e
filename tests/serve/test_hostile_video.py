"""The server answers hostile TFRecord uploads with 422, never 500 (issue 18)."""

import pytest

from tests.video import hostile

from .test_bad_input import error, post, still_serving


@pytest.mark.parametrize("name, data, words", [
    ("big.tfrecord", hostile.huge_length_record(), ["big.tfrecord", "truncated record"]),
    ("big.tfrecord.gz", hostile.huge_length_gzip(), ["big.tfrecord.gz", "truncated record"]),
    ("deep.tfrecord", hostile.nested_groups(), ["deep.tfrecord", "nested deeper"]),
], ids=["length", "length-gzip", "depth"])
def test_hostile_tfrecords_are_422(server, name, data, words):
    error(post(server, "/v1/classify/video", files={"file": (name, data)}), 422, *words)
    still_serving(server)
