"""The progress bar for save, restore and dump."""

from __future__ import annotations

import io
import time
from pathlib import Path

from virtkit.cli import progress
from virtkit.cli.progress import file_watcher, render, run_with_progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_render_known_fraction() -> None:
    frame = render("Save:", 512 * 1024, 1024 * 1024, 1.25, 0)
    assert frame.startswith("Save: [" + "#" * 15 + " " * 15 + "]  50%")
    assert "512.0 KiB" in frame and frame.endswith("1.2s")


def test_render_unknown_fraction_moves() -> None:
    frames = {render("Restore:", None, None, 0.0, tick) for tick in range(10)}
    assert len(frames) == 10
    assert all("<=>" in f for f in frames)


def test_nothing_drawn_when_not_a_terminal() -> None:
    stream = io.StringIO()
    assert run_with_progress("Save:", lambda: 42, stream) == 42
    assert stream.getvalue() == ""


def test_bar_drawn_and_erased_on_a_terminal(tmp_path: Path, monkeypatch: object) -> None:
    progress.DELAY = 0.0  # type: ignore[misc]
    try:
        stream = FakeTerminal()
        target = tmp_path / "out.save"

        def slow_save() -> str:
            for i in range(5):
                with open(f"{target}.tmp-1", "ab") as f:
                    f.write(b"x" * 1024)
                time.sleep(0.05)
            (tmp_path / "out.save.tmp-1").rename(target)
            return "done"

        assert run_with_progress("Save:", slow_save, stream, file_watcher(str(target)),
                                 10 * 1024) == "done"
    finally:
        progress.DELAY = 0.2  # type: ignore[misc]
    text = stream.getvalue()
    assert "Save: [" in text and "%" in text
    assert text.endswith("\r")  # erased: the line is blank again


def test_errors_pass_through() -> None:
    stream = FakeTerminal()

    def fail() -> None:
        raise ValueError("boom")

    try:
        run_with_progress("Dump:", fail, stream)
    except ValueError as e:
        assert str(e) == "boom"
    else:
        raise AssertionError("no error")


def test_file_watcher(tmp_path: Path) -> None:
    size = file_watcher(str(tmp_path / "f"))
    assert size() is None
    (tmp_path / "f.tmp-9").write_bytes(b"abc")
    assert size() == 3
    assert file_watcher("/no/such/dir/f")() is None
