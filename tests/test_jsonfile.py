"""The one reader of our JSON side files, against what may sit in their place."""

from __future__ import annotations

import os

import pytest

from engine.jsonfile import read_json, read_json_object


def test_an_object_is_read_and_anything_else_is_none(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('{"x": 1}')
    assert read_json_object(p) == {"x": 1}
    for text in ("[1, 2]", '{"x": ', "", "[" * 100_000):  # a list, half-written, empty, deep
        p.write_text(text)
        assert read_json_object(p) is None, text[:10]
    assert read_json_object(tmp_path / "absent.json") is None


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "folder", "too_large"])
def test_what_is_not_a_small_regular_file_is_refused_at_once(tmp_path, kind):
    """A FIFO hung a plain read for good and a link to /dev/zero filled memory."""
    p = tmp_path / "outcome.json"
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "dev_zero":
        p.symlink_to("/dev/zero")
    elif kind == "folder":
        p.mkdir()
    else:
        p.write_text('{"x": "' + "a" * 2000 + '"}')
    assert read_json_object(p, max_bytes=1000) is None
    with pytest.raises((OSError, ValueError)):
        read_json(p, max_bytes=1000)
