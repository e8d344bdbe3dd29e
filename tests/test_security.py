"""Security: loading an index or a model never runs code from it; names stay under the root; umask.

* An index is JSON + SQLite + FAISS (or a NumPy ``.npz`` without pickles): no pickle anywhere in the
  code base (an AST scan), ``torch.load`` only with ``weights_only=True``, ``np.load`` never with
  ``allow_pickle=True``, no ``eval``/``exec``, ``trust_remote_code`` never switched on in code.
* Models load from safetensors; a model directory with custom code or pickled weights is refused
  with a clear error and its code never runs.
* An index NAME cannot leave the index root; anything else is an explicit path (see
  ``resolve_index_path``).
* Index files are created with the user's umask (077 gives owner-only files).
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import pickle
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from store_helpers import newest_segment

from tase_search.errors import IndexCorrupt, InputError, ModelError
from tase_search.retriever import Retriever, resolve_index_path
from tase_search.testing import FakeEncoder

REPO = Path(__file__).resolve().parents[1]
SCANNED = ["tase_search", "training", "campaign", "bench"]
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}


def _python_files() -> list[Path]:
    return sorted(p for d in SCANNED if (REPO / d).is_dir() for p in (REPO / d).rglob("*.py"))


def _call_name(node: ast.Call) -> str:
    f = node.func
    parts = []
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return ".".join(reversed(parts))


def _kw(node: ast.Call, name: str) -> object:
    for k in node.keywords:
        if k.arg == name:
            return k.value.value if isinstance(k.value, ast.Constant) else "<expr>"
    return None


def test_no_code_execution_paths_in_the_code_base() -> None:
    files = _python_files()
    assert any(p.name == "retriever.py" for p in files)
    problems = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] in FORBIDDEN_MODULES:
                        problems.append(f"{where}: import {a.name}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
                problems.append(f"{where}: from {node.module} import ...")
            elif isinstance(node, ast.Call):
                name = _call_name(node)
                last = name.rsplit(".", 1)[-1]
                if name in ("eval", "exec"):
                    problems.append(f"{where}: {name}()")
                if name.endswith("torch.load") and _kw(node, "weights_only") is not True:
                    problems.append(f"{where}: torch.load without weights_only=True")
                if (
                    last == "load"
                    and name.split(".")[0] in ("np", "numpy")
                    and _kw(node, "allow_pickle") is True
                ):
                    problems.append(f"{where}: np.load(allow_pickle=True)")
                if last in ("read_pickle", "from_pickle"):
                    problems.append(f"{where}: {name}()")
                if name.endswith("yaml.load") and _kw(node, "Loader") in (None, "<expr>"):
                    loader = next((k for k in node.keywords if k.arg == "Loader"), None)
                    if loader is None or "Safe" not in ast.unparse(loader.value):
                        problems.append(f"{where}: yaml.load without SafeLoader")
                if _kw(node, "trust_remote_code") is True:
                    problems.append(f"{where}: trust_remote_code=True")
    assert problems == []


def test_trust_remote_code_is_off_by_default() -> None:
    from tase_search.encoding.encoder import Encoder
    from tase_search.encoding.st_loader import load_sentence_transformer

    assert inspect.signature(Encoder.load).parameters["trust_remote_code"].default is False
    assert inspect.signature(load_sentence_transformer).parameters["trust_remote_code"].default is False
    from tase_search.cli.app import main

    assert "trust" not in json.dumps([p.name for c in main.commands.values() for p in c.params])


# ------------------------------------------------------------------------------ hostile models
_EVIL = """
from pathlib import Path
Path({marker!r}).write_text("code from the model ran")
from transformers import BertConfig, BertModel
from store_helpers import newest_segment
class EvilConfig(BertConfig):
    model_type = "bert"
class EvilModel(BertModel):
    config_class = EvilConfig
class Evil:
    pass
"""


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.write_text, (self.marker, "pickle ran"))


def _hostile_model(kind: str, src: Path, dst: Path, marker: Path) -> Path:
    shutil.copytree(src, dst)
    (dst / "evil.py").write_text(_EVIL.format(marker=str(marker)))
    if kind == "auto_map":  # config asks transformers to import evil.py
        cfg = json.loads((dst / "config.json").read_text())
        cfg["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
        (dst / "config.json").write_text(json.dumps(cfg))
    elif kind == "module":  # modules.json names a class from evil.py
        mods = json.loads((dst / "modules.json").read_text())
        mods[-1]["type"] = "evil.Evil"
        (dst / "modules.json").write_text(json.dumps(mods))
    elif kind == "pickle":  # pickled weights instead of safetensors
        (dst / "model.safetensors").unlink()
        with open(dst / "pytorch_model.bin", "wb") as fh:
            pickle.dump({"embeddings.word_embeddings.weight": _Payload(marker)}, fh)  # noqa: S301
    return dst


@pytest.mark.parametrize("kind", ["auto_map", "module", "pickle"])
def test_hostile_model_code_never_runs(tmp_path: Path, tiny_model_dir: Path, kind: str) -> None:
    from tase_search.encoding.encoder import Encoder

    marker = tmp_path / "PWNED"
    model = _hostile_model(kind, tiny_model_dir, tmp_path / "model", marker)
    try:
        enc = Encoder.load(str(model), precision="fp32")
    except ModelError as exc:  # refused, with a clear message
        assert str(model) in str(exc)
    else:  # loaded with the library's own code (auto_map ignored without trust_remote_code)
        assert enc.encode_query(["futbol"]).shape[0] == 1
    assert not marker.exists(), "code shipped with the model was executed"


# ------------------------------------------------------------------------------ hostile indexes
def test_index_files_that_are_pickles_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    enc = FakeEncoder()
    for backend in ("faiss", "numpy"):
        ix = tmp_path / backend
        Retriever.build(["futbol maçı", "yağmur"], model=enc, path=ix, backend=backend)
        gen = newest_segment(ix)
        vec = gen / ("vectors.faiss" if backend == "faiss" else "vectors.npz")
        if backend == "faiss":
            vec.write_bytes(pickle.dumps(_Payload(marker)))
        else:  # an .npz whose arrays are pickled objects
            with open(vec, "wb") as fh:
                np.savez(
                    fh, ids=np.array([_Payload(marker)], dtype=object), vectors=np.zeros((1, 64), np.float32)
                )
        m = json.loads((ix / "manifest.json").read_text())  # even with matching size and checksum
        from tase_search.store.manifest import sha256_file

        m["files"][vec.name] = {"bytes": vec.stat().st_size, "sha256": sha256_file(vec)}
        (ix / "manifest.json").write_text(json.dumps(m))
        with pytest.raises(IndexCorrupt):
            Retriever.load(ix, model=enc).search("futbol")
        assert not marker.exists()


# ------------------------------------------------------------------------------ names
@pytest.mark.parametrize(
    "name",
    ["..", "../x", "../../etc", "a/../../b", "/etc/passwd", "~", "~/x", ".", "./x", ".hidden", "..\\x"],
)
def test_paths_are_explicit(name: str) -> None:
    """Anything with '/' or starting with '.'/'~' is a path the user wrote, never a name under root."""
    p = resolve_index_path(name, "/srv/indexes")
    assert p == Path(name).expanduser()


@pytest.mark.parametrize(
    "name", ["a\\..\\..\\x", "a b", "x\x00y", "", "-rf", "_x", "é", "a" * 200, "a:b", "a*b", "\n"]
)
def test_bad_names_refused_or_stay_inside(name: str) -> None:
    try:
        p = resolve_index_path(name, "/srv/indexes")
    except InputError as exc:
        assert "not valid" in str(exc)
        return
    assert p.parent == Path("/srv/indexes")
    assert os.path.normpath(p).startswith("/srv/indexes/")


def test_unknown_user_home_is_a_clean_error() -> None:
    with pytest.raises(InputError, match="no such user"):
        resolve_index_path("~no-such-user-tase/x", "/srv/indexes")


def test_cli_index_name_stays_under_root(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tase_search.cli.app import main

    res = CliRunner().invoke(main, ["info", "--index", "..x", "--root", str(tmp_path)])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)  # '..x' is a path: no index there
    res = CliRunner().invoke(main, ["info", "--index", "bad\\..\\name", "--root", str(tmp_path)])
    assert res.exit_code == 1 and "not valid" in res.output


# ------------------------------------------------------------------------------ umask
@pytest.mark.parametrize("umask", [0o077, 0o022])
def test_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    enc = FakeEncoder()
    ix = tmp_path / "ix"
    old = os.umask(umask)
    try:
        r = Retriever.build(["futbol maçı", "yağmur yarın"], model=enc, path=ix)
        r.add(["kedi köpek"])
        r.delete(["1"])
    finally:
        os.umask(old)
    paths = [ix, *ix.rglob("*")]
    assert any(p.name == "docs.sqlite" for p in paths) and any(p.name == ".lock" for p in paths)
    for p in paths:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & umask == 0, f"{p.relative_to(tmp_path)} is {oct(mode)} under umask {oct(umask)}"
        if umask == 0o022 and p.is_file():
            assert mode & 0o044, f"{p} should be readable by others under umask 022"


def test_runs_without_pickle_module_imported_for_index_io(tmp_path: Path) -> None:
    """Building, loading and searching an index never imports pickle-based loaders of our own."""
    code = (
        "import sys\n"
        "from tase_search.testing import FakeEncoder\n"
        "from tase_search.retriever import Retriever\n"
        "r = Retriever.build(['futbol'], model=FakeEncoder(), path=%r)\n"
        "Retriever.load(%r, model=FakeEncoder()).search('futbol')\n"
        "print('torch' in sys.modules)\n"
    ) % (str(tmp_path / "ix"), str(tmp_path / "ix"))
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"  # index I/O needs neither torch nor its pickle-based loader
