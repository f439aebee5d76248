"""memomentum.runner.files: how every reader opens a run directory's JSON files and tells a
finished run."""

from __future__ import annotations

import pytest

from memomentum.base.errors import InputError
from memomentum.runner.files import SUMMARY, is_finished, read_json


def test_a_run_is_finished_when_its_summary_is_there(tmp_path):
    assert not is_finished(tmp_path)
    (tmp_path / SUMMARY).mkdir()  # a folder of that name is no summary
    assert not is_finished(tmp_path)
    (tmp_path / SUMMARY).rmdir()
    (tmp_path / SUMMARY).write_text("{}\n")
    assert is_finished(tmp_path)


def test_read_json_reads_what_the_run_wrote(tmp_path):
    (tmp_path / "config.json").write_text('{"seed": 1, "method": "me-momentum"}\n', encoding="utf-8")
    assert read_json(tmp_path / "config.json") == {"seed": 1, "method": "me-momentum"}


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read {path}: No such file or directory"),
        ("{not json", "cannot read {path}: Expecting property name enclosed in double quotes"),
        (
            " \n",
            "{path} is empty (a write that was interrupted?): run that run again, or move its folder out of the way",
        ),
    ],
)
def test_a_damaged_run_file_is_named_in_one_sentence(tmp_path, content, message):
    path = tmp_path / SUMMARY
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError) as e:
        read_json(path)
    assert str(e.value).startswith(message.format(path=path))
