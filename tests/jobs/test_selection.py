"""Item filters: an ids file that is not a readable file is one line that says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from orienteer.data.errors import OrienteerError
from orienteer.jobs.selection import parse_spec


def test_ids_file_problems_are_named(tmp_path: Path) -> None:
    good = tmp_path / "ids.txt"
    good.write_text("a\n\n b \n", encoding="utf-8")
    assert parse_spec(f"ids-file:{good}").ids == ("a", "b")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OrienteerError, match=r"ids file .*loop: symlink loop \(expected a file of one item id per line\)"):
        parse_spec(f"ids-file:{loop}")
    with pytest.raises(OrienteerError, match=r"ids file .*missing: not found"):
        parse_spec(f"ids-file:{tmp_path / 'missing'}")
    with pytest.raises(OrienteerError, match=r"ids file .*: a folder"):
        parse_spec(f"ids-file:{tmp_path}")
