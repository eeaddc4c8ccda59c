"""Every ```python block of the README and of docs/ runs as written (```py blocks need the Hub and are not run)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    (f"{path.relative_to(ROOT)}[{i}]", code)
    for path in DOCUMENTS
    for i, code in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S))
]


def test_documents_have_runnable_examples():
    names = {name.split("[")[0] for name, _ in BLOCKS}
    assert {"README.md", "docs/sampling.md"} <= names


@pytest.mark.parametrize("name, code", BLOCKS, ids=[name for name, _ in BLOCKS])
def test_python_blocks_run(name, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, name, "exec"), {"__name__": "__doc_example__"})
