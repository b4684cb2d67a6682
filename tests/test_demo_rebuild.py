"""The embedded demo models rebuild byte-identically (the whole recipe at a tiny size, run twice).

In a file of its own so that pytest-xdist (``--dist loadfile``) can run it beside the other showcase tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
XLMR_TOKENIZER = ROOT.parent / "shared" / "models" / "xlmr-tokenizer"


@pytest.mark.slow
def test_a_small_rebuild_is_byte_identical(tmp_path):
    """The recipe (vocabulary, CoNg distillation, training, calibration, weight sweep) run twice with the same seed
    on the bundled corpus's first 100 passages writes the same weights, settings and record."""
    if not (XLMR_TOKENIZER / "tokenizer.json").is_file():
        pytest.skip(f"{XLMR_TOKENIZER} not found")
    from sparse_demo.offline.expansion import TeacherSettings
    from sparse_demo.offline.recipe import BuildOptions, build

    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        build(
            BuildOptions(
                out=out,
                work_dir=tmp_path / f"{run}.work",
                tokenizer=str(XLMR_TOKENIZER),
                size="tiny",
                epochs=0.1,
                patience=1,
                lexicon_count=32,
                lexicon_candidates=200,
                function_phrases=50,
                distil_epochs=1,
                teacher=TeacherSettings(top_n=5),
                style="v25",
                passages=100,
            )
        )
        digests.append({p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".safetensors", ".json")})
        # the float32 weights before the float16 export: a difference in the last bits is lost in rounding there
        digests[-1]["trained"] = (tmp_path / f"{run}.work" / "trained" / "model.safetensors").read_bytes()
    a, b = digests
    assert a["trained"] == b["trained"]
    assert a["model.safetensors"] == b["model.safetensors"]
    for name in ("config.json", "tokenizer.json", "sparse_demo.json"):
        assert a[name] == b[name], name
