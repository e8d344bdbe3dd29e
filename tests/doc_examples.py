"""Run the examples of docs/integrations.md, so the documentation cannot drift from the code.

An example is the fenced ``python`` block that follows a ``<!-- example: NAME -->`` line. The
``corpus`` example runs first (every example uses its TEXTS, IDS and METADATAS); the ``setup``
example, which loads the shipped model, is replaced by the names the caller passes (a toy encoder).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"
_EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\s*\n```(\w+)\n(.*?)\n```", re.DOTALL)


def examples() -> dict[str, tuple[str, str]]:
    """``name -> (language, code)`` for every example in the document."""
    found: dict[str, tuple[str, str]] = {}
    for name, lang, code in _EXAMPLE.findall(DOC.read_text(encoding="utf-8")):
        assert name not in found, f"example {name!r} appears twice in {DOC}"
        found[name] = (lang, code)
    return found


def corpus() -> dict[str, Any]:
    """The names the corpus example defines (CORPUS, IDS, TEXTS, METADATAS)."""
    namespace: dict[str, Any] = {}
    exec(compile(examples()["corpus"][1], f"{DOC}:corpus", "exec"), namespace)  # noqa: S102
    return namespace


def run_example(name: str, **given: Any) -> dict[str, Any]:
    """Execute the corpus example, then example ``name``, with ``given`` defined; returns its namespace."""
    blocks = examples()
    assert name in blocks, f"{DOC} has no example {name!r} (found {', '.join(blocks)})"
    namespace: dict[str, Any] = {"__name__": f"doc_example_{name}"}
    exec(compile(blocks["corpus"][1], f"{DOC}:corpus", "exec"), namespace)  # noqa: S102
    namespace.update(given)
    lang, code = blocks[name]
    assert lang == "python", f"example {name!r} is {lang}, not python"
    exec(compile(code, f"{DOC}:{name}", "exec"), namespace)  # noqa: S102
    return namespace


def shell_example(name: str) -> list[tuple[list[str], str | None]]:
    """The commands of shell example ``name`` as argv lists, each with the first result id its
    ``# → ID`` comment promises (None without one). Lines starting with ``#`` are comments."""
    import shlex

    lang, code = examples()[name]
    assert lang in ("bash", "sh", "console"), f"example {name!r} is {lang}, not a shell example"
    out = []
    for line in code.splitlines():
        command, _, comment = line.partition("#")
        if not command.strip():
            continue
        expected = comment.split("→", 1)[1].strip() if "→" in comment else None
        out.append((shlex.split(command), expected))
    return out
