"""docs/authoring.md: its example puzzle validates, and the errors it shows are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

from engine.validate import validate_paths

DOC = Path(__file__).resolve().parents[1] / "docs" / "authoring.md"


def _examples() -> dict[str, str]:
    """Every ```yaml block whose first line names a file (``# name.yaml ...``)."""
    out = {}
    for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S):
        first = block.splitlines()[0]
        m = re.match(r"# ([\w.-]+\.yaml)", first)
        if m:
            out[m.group(1)] = block
    return out


def test_the_complete_example_validates(tmp_path: Path, monkeypatch) -> None:
    examples = _examples()
    assert {"my-first-puzzle.yaml", "my-broken-puzzle.yaml", "circuit.yaml"} <= set(examples)
    monkeypatch.chdir(tmp_path)
    for name in ("my-first-puzzle.yaml", "circuit.yaml"):
        Path(name).write_text(examples[name])
        problems = validate_paths([name])
        assert not problems, "\n".join(map(str, problems))


def test_the_broken_example_gives_the_messages_shown(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("my-broken-puzzle.yaml").write_text(_examples()["my-broken-puzzle.yaml"])
    shown = re.search(r"```text\n(my-broken-puzzle.*?)```", DOC.read_text(), re.S)
    assert shown, "the doc shows the validator's output for the broken example"
    actual = [str(p) for p in validate_paths(["my-broken-puzzle.yaml"])]
    assert actual == shown.group(1).strip().splitlines()


def test_every_section_of_the_walkthrough_is_part_of_the_complete_example() -> None:
    """The step-by-step snippets use the same keys as the file they build up to."""
    complete = _examples()["my-first-puzzle.yaml"]
    for key in ("id:", "prompts:", "roles:", "metric:", "corrupt:", "cards:", "hints:",
                "models:", "rounds:", "solution:", "pass:"):
        assert key in complete
