# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
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
    """Each block runs and checks what its document says it gives: its `assert` lines (at the block's top level, so
    that they always run) state the shapes, types and values the prose promises."""
    checks = [line for line in code.splitlines() if line.startswith("assert ")]
    assert checks, f"{name} checks none of its results: add an `assert` line for what the document promises"
    monkeypatch.chdir(tmp_path)
    exec(compile(code, name, "exec"), {"__name__": "__doc_example__"})


def load_script(relative: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_up_to_date():
    make_api_docs = load_script("scripts/make_api_docs.py")
    assert (ROOT / "docs" / "api.md").read_text() == make_api_docs.render(), "run: python scripts/make_api_docs.py"


SCRIPTS = {
    "examples/train_act/train_act.py": "parse_args",
    "scripts/evaluate.py": "parse_args",
    "scripts/convert_act_original_to_diffusers.py": "parse_args",
}


def documented_commands():
    """Every command of a ```bash block (continuation lines joined) that runs one of SCRIPTS."""
    import shlex

    found = []
    for path in [*DOCUMENTS, ROOT / "examples" / "train_act" / "README.md"]:
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
            for command in block.replace("\\\n", " ").splitlines():
                words = shlex.split(command, comments=True)
                for script in SCRIPTS:
                    if script in words:
                        found.append(
                            (
                                f"{path.relative_to(ROOT)}: {command.strip()[:80]}",
                                script,
                                words[words.index(script) + 1 :],
                            )
                        )
    return found


COMMANDS = documented_commands()


def test_the_docs_show_commands_of_every_script():
    assert {script for _, script, _ in COMMANDS} == set(SCRIPTS)


@pytest.mark.parametrize("where, script, args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_documented_commands_use_real_flags(where, script, args):
    """Each documented command's flags parse with the script's own parser (the runs themselves are tested
    elsewhere with small sizes)."""
    module = load_script(script)
    if "--help" in args:
        with pytest.raises(SystemExit) as stop:
            getattr(module, SCRIPTS[script])(args)
        assert stop.value.code == 0
    else:
        getattr(module, SCRIPTS[script])(args)
