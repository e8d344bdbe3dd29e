"""Import paths of the flat layout keep working: the module at its new home, with a DeprecationWarning."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("tase_search.readers", "tase_search.documents.readers"),
        ("tase_search.cli_index", "tase_search.cli.index"),
        ("tase_search.search", "tase_search.query.searcher"),
        ("tase_search.served_index", "tase_search.server.served_index"),
        ("tase_search.home", "tase_search.runtime.home"),
        ("tase_search.backends", "tase_search.encoding.backends"),
        ("tase_search.backends.artefacts", "tase_search.encoding.backends.artefacts"),
    ],
)
def test_an_old_path_is_the_module_at_its_new_home(old: str, new: str) -> None:
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        moved = importlib.import_module(old)
    assert moved is importlib.import_module(new)
    assert moved.__spec__.name == new  # the real spec stays: reload, pickling and pdb see one module


def test_the_reexporting_modules_keep_their_names() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from tase_search.encoder import Encoder, EncoderLike, load_sentence_transformer
        from tase_search.onnx_query import LightQueryEncoder, cache_dir, export
    from tase_search.encoding.encoder import Encoder as RealEncoder
    from tase_search.encoding.onnx_runtime import export as real_export
    from tase_search.encoding.protocols import DocumentEncoder
    from tase_search.encoding.query_bundle import LightQueryEncoder as RealLight

    assert Encoder is RealEncoder and EncoderLike is DocumentEncoder and export is real_export
    assert LightQueryEncoder is RealLight and callable(cache_dir) and callable(load_sentence_transformer)


def test_package_faces_keep_their_names() -> None:
    from tase_search.cli import main
    from tase_search.cli.app import main as real_main
    from tase_search.text import turkish_lower
    from tase_search.text.normalize import turkish_lower as real_lower

    assert main is real_main and turkish_lower is real_lower


def test_an_old_path_warns_once_imported() -> None:
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n    import tase_search.readers\nexcept DeprecationWarning as w:\n    print(w)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (
        "tase_search.readers is an old import path: import from tase_search.documents.readers" in out.stdout
    )
