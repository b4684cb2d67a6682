"""The Explore heatmap: each cell is the card's activation at that position, computed by hand from HF logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import KOREAN_TEXTS

from sparse_demo.heatmap import build_heatmap, by_morpheme, heatmap_chart
from sparse_demo.modeling import make_mlm, train_tokenizer

TEXT = "당뇨병 치료 방법은 식이요법과 운동입니다"


@pytest.fixture(scope="module")
def encoder():
    from sparse_demo.encoder import SpladeEncoder

    tok = train_tokenizer(KOREAN_TEXTS * 5, vocab_size=300)
    return SpladeEncoder(make_mlm(tok, "tiny", seed=6), tok, name="tiny", max_length=48)


def test_cells_equal_the_formula_on_full_logits_and_the_marked_cell_is_the_weight(encoder):
    enc = encoder.encode([TEXT])[0]
    ids = enc.vector.token_ids[:12]
    values = encoder.position_activations(enc, ids)
    with torch.no_grad():  # the plain formula, from transformers' own logits
        logits = encoder.model(input_ids=torch.tensor([list(enc.input_ids)])).logits[0]
    hand = torch.log1p(torch.relu(logits[:, torch.as_tensor(ids)])).numpy()
    assert values.shape == (len(enc.input_ids), 12)
    assert np.abs(values - hand).max() < 1e-5
    hm = build_heatmap(enc.text, enc.input_ids, enc.offsets, values, ids, encoder.id_to_token)
    assert np.abs(hm.weights - enc.vector.weights[:12]).max() < 1e-5
    assert hm.argmax.tolist() == enc.vector.positions[:12].tolist()
    frame = hm.to_frame()
    marked = frame[frame.is_max]
    assert len(marked) == 12 and sorted(marked.token_rank) == list(range(1, 13))
    assert set(zip(marked.token_rank, marked.position)) == {(j + 1, int(p)) for j, p in enumerate(hm.argmax)}
    heatmap_chart(frame).to_dict()  # a valid chart spec


def test_morpheme_rows_hold_the_max_of_their_pieces(encoder):
    enc = encoder.encode([TEXT])[0]
    ids = enc.vector.token_ids[:6]
    hm = build_heatmap(
        enc.text, enc.input_ids, enc.offsets, encoder.position_activations(enc, ids), ids, encoder.id_to_token
    )
    folded = by_morpheme(hm)
    labels = folded.drop_duplicates("row")["label"].tolist()
    assert "당뇨병/NNG" in labels and "<s>" in labels and labels[-1] == "</s>"
    for _, row in folded.iterrows():
        first, _, last = row.positions.partition("-")
        span = range(int(first), int(last or first) + 1)
        assert row.value == pytest.approx(float(hm.values[list(span), row.token_rank - 1].max()))
    assert folded.is_max.sum() == 6  # each token's maximum lies in exactly one row
    heatmap_chart(folded, row_field="row", row_label="label").to_dict()


def test_the_explore_handler_draws_it_and_writes_the_csv(encoder, tmp_path):
    from sparse_demo.ui.explore import HEATMAP_ROWS, explore_heatmap

    class Ctx:  # the handler's needs: limits and an encoder lookup
        from sparse_demo.config import load_limits

        limits = load_limits({})

        def encoder(self, *_):
            return encoder

    r = explore_heatmap(Ctx(), TEXT, "tiny", n_tokens=8, rows=HEATMAP_ROWS[1], out_dir=tmp_path)
    assert r.chart is not None and "input positions" in r.status and r.csv_path
    import pandas as pd

    csv = pd.read_csv(r.csv_path, encoding="utf-8-sig")
    assert len(csv) == len(r.heatmap.pieces) * 8 and csv["value"].max() == pytest.approx(r.heatmap.values.max())
    empty = explore_heatmap(Ctx(), "  ", "tiny")
    assert empty.chart is None and "empty" in empty.status.lower()
