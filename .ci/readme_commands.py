# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Prints the shell lines of the ```bash blocks in README.md's "Install" and "Quickstart" sections, for .ci/run."""

import re
from pathlib import Path

readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
for section in ("Install", "Quickstart"):
    body = re.search(rf"^## {section}\n(.*?)(?=^## )", readme, flags=re.S | re.M).group(1)
    for block in re.findall(r"```bash\n(.*?)```", body, flags=re.S):
        for line in block.splitlines():
            command = line.split("#")[0].strip()
            if command:
                print(command)
