"""The demo model's card (``README.md``), written from its build record."""

from __future__ import annotations

from typing import Any

from sparse_demo.offline.expansion import TeacherSettings


def model_card(record: dict[str, Any]) -> str:
    """The demo model's ``README.md`` from its build record."""
    arch = record["architecture"]
    vocab = record["vocabulary"]
    tr = record["training"]
    weight = record["hybrid_weight"]

    def table(metrics: dict[str, dict[str, float]]) -> str:
        rows = ["| system | R@1 | MRR@10 |", "|---|---|---|"]
        rows += [f"| {name} | {m['R@1']:.3f} | {m['MRR@10']:.3f} |" for name, m in metrics.items()]
        return "\n".join(rows)

    def before_after() -> str:
        rows = ["| system | R@1 before | R@1 after | MRR@10 before | MRR@10 after |", "|---|---|---|---|---|"]
        before, after = tr.get("metrics_before", {}), tr.get("metrics_after", {})
        for name in after:
            b, a = before.get(name, {}), after[name]
            rows.append(
                f"| {name} | {b.get('R@1', float('nan')):.3f} | {a.get('R@1', float('nan')):.3f} | "
                f"{b.get('MRR@10', float('nan')):.3f} | {a.get('MRR@10', float('nan')):.3f} |"
            )
        return "\n".join(rows)

    style = record.get("style", "v26")
    function_target = (record.get("expansion_distillation") or {}).get("settings", {}).get("function_target")
    if not function_target or function_target == 1:
        like = "like content words"
    else:
        like = f"at {function_target:g} x a content word's target"
    penalties = (
        "the card's stopword (x15) and special-token (x100) FLOPS penalties, as V26, and an expansion "
        "teacher that targets particles, endings, punctuation and special tokens at 0"
        if style == "v26"
        else "no stopword or special-token penalty (both x1), as V25, and an expansion teacher that targets "
        f"particles and endings {like}: function words and endings rise into the top ranks"
    )
    cal = record.get("background_calibration")
    calibration = ""
    if cal:
        silenced = ", ".join(f"`{t['token']}`" for t in cal["silenced"]) or "none"
        calibration = (
            f"\nBackground calibration (last step): the tokens the model added as expansions to at least "
            f"{cal['share']:.0%} of the {cal['texts']} bundled texts that lack them were noise, the same words "
            f"for every text; their output bias was lowered by their {cal['quantile']:.0%} quantile logit, so "
            f"they are added only where unusually strong: {silenced}.\n"
        )
    distil = record.get("expansion_distillation")
    if distil:
        t = {**TeacherSettings().to_dict(), **distil["settings"]}  # an older record lacks the newer settings
        expansions = (
            f"Expansions come from Kiwi's CoNg model (`kiwipiepy_model`, Apache-2.0) used as a teacher: each "
            f"content morpheme's {t['top_n']} most similar content morphemes with similarity >= {t['min_score']:g}, "
            f"as whole words of at most {t['max_pieces']} pieces of >= {t['min_piece_chars']} characters, with "
            f"target weight {t['weight']:g} x similarity"
            + (
                f" x rarity (clamp(ln id / ln {t['rarity_ref']:,}, {t['rarity_floor']:g}, 1) of the proposed "
                "morpheme's CoNg id, ids following frequency: frequent, unspecific words propose less)"
                if t.get("rarity_ref")
                else ""
            )
            + (
                f"; a word that more than {t['max_indegree']} of CoNg's {t['indegree_words']:,} most "
                f"frequent content morphemes propose (a hub of the neighbour graph) is scaled by {t['max_indegree']} "
                "/ that count"
                if t.get("max_indegree")
                else ""
            )
            + (
                f"; verb and adjective stems among CoNg's {t['min_verb_id']:,} most frequent morphemes are never "
                + ("proposed (but expanded)" if t.get("expand_frequent_verbs") else "proposed nor expanded")
                if t.get("min_verb_id")
                else ""
            )
            + (
                f"; a text whose target vector weighs more than {t['length_ref']:g} in all (L1) has every "
                f"target scaled by ({t['length_ref']:g} / L1) ^ {t['length_norm']:g}, so a long text's "
                "terms each weigh less (a length normalisation, as in BM25)"
                if t.get("length_norm")
                else ""
            )
            + f". The embeddings of {distil.get('graph_pieces', 0):,} "
            f"single-piece words were first moved towards their expansions', then the model was trained to "
            f"produce the teacher's vectors ({distil['steps']} steps on {distil['texts']:,} texts: the training "
            f"split's queries and passages and short noun phrases with particles, determiners and endings; plus "
            f"{distil['lexicon_texts']:,} one-word lexicon texts; {distil['mean_expansions']:.1f} expansion pieces "
            f"per text"
            + (f"; slope {distil['leak']:g} below 0 for an expansion not produced yet" if "leak" in distil else "")
            + ") before the retrieval training"
            + (
                f", which keeps the teacher's vectors as a distillation term (weight {vkd:g}) next to the card's loss."
                if (vkd := record.get("training", {}).get("config", {}).get("loss", {}).get("lambda_vector_kd"))
                else "."
            )
        )
    else:
        expansions = "Built without the expansion teacher: expansions are rare."
    bench = ""
    if record.get("benchmarks"):
        parts = ["## Benchmarks (`../shared/data`, not in the repository; Search code, memory backend)\n"]
        for name, metrics in record["benchmarks"].items():
            if name == "unk_rate":
                parts.append(
                    f"`<unk>` rate on every BoolQ and KorSTS text: {metrics['demo']:.5f} "
                    f"(XLM-R's full vocabulary: {metrics['xlm-r']:.5f})\n"
                )
                continue
            keep = {k: v for k, v in metrics.items() if k in ("bm25", "model", f"hybrid@{weight:g}")}
            parts.append(f"**{name}**\n\n{table(keep)}\n")
        bench = "\n".join(parts) + "\n"

    return f"""---
library_name: transformers
language: [ko]
license: cc0-1.0
tags: [splade, sparse-retrieval, korean, demo]
---
# {record["name"]}: the embedded demo model (small, trained on bundled sample data)

A tiny Korean SPLADE encoder shipped inside the app so that it answers offline in its first
second. **It is not the V26 checkpoint** and is much weaker than it: use it to try the app, not
to judge neural sparse retrieval. Built by `scripts/build_demo_model.py` (seed {record["seed"]}).

Sparse vector: `w = max_t log(1 + relu(logits_t)) * mask_t`; load with
`sparse_demo.encoder.SpladeEncoder.load(folder)` or `AutoModelForMaskedLM`.

## Architecture
| | |
|---|---|
| model | `XLMRobertaForMaskedLM`, hidden {arch["hidden_size"]}, {arch["num_hidden_layers"]} layers, \
{arch["num_attention_heads"]} heads, intermediate {arch["intermediate_size"]} |
| vocabulary | {arch["vocab_size"]:,} pieces (tied input/output embeddings) |
| parameters | {arch["parameters"]:,} |
| weights | `model.safetensors`, {arch["dtype"]}, {record["size_bytes"] / 1e6:.1f} MB folder |
| max length | {record["max_length"]} tokens |
| recommended hybrid weight | **{weight:g}** (sparse leg; BM25 gets {1 - weight:g}); in `sparse_demo.json` |

## Vocabulary
XLM-R's SentencePiece vocabulary ({vocab["base_size"]:,} pieces) pruned to {vocab["kept"]:,}: every piece
with Hangul ({vocab["from_hangul"]:,}), the pieces XLM-R uses on Kiwi's lexicon ({vocab["lexicon_forms"]:,}
morpheme forms from the `kiwipiepy_model` package: {vocab["from_lexicon"]:,} pieces) and on the bundled
texts ({vocab["from_bundled"]:,}), single-character pieces of ASCII, Latin letters and KS X 1001
({vocab["from_single_chars"]:,}), plus {vocab["added_syllables"]:,} KS X 1001 Hangul syllables XLM-R lacks.
`<unk>` rate on the bundled texts: {vocab["unk_rate_bundled"]:.5f}.

## Style and expansions
**{style.upper()}-style**: {penalties}. Both bundled demo models (`demo-v25-style`, `demo-v26-style`) share
the data, vocabulary, seed, lexical init and expansions, and differ only in how stopwords and special
tokens are treated.

{expansions}
{calibration}
## Training
Lexical init (tied output, identity head, output bias {record["init"]["output_bias"]}), then
`sparse_demo.train` on {tr["num_train_pairs"]:,} pairs: the pairs files of `assets/pairs/`
({", ".join(tr["files"])}), the evaluation queries of `assets/corpus/ko_sample` and each passage's
title as a query (all written for this project, CC0). {tr["steps"]} steps ({tr["epochs"]:.1f} epochs,
{tr["train_s"]:.0f} s, status {tr["status"]}), evaluating every epoch on the held-out split and keeping the
best checkpoint by {tr.get("best_by", "model")} MRR@10 (the untrained model included).
Held-out split: {tr["num_eval_passages"]} passages with their {tr["num_eval_queries"]} queries, chosen by a
seeded split by passage (no held-out passage or query is trained on), searched among all
{tr["num_corpus_passages"]} passages of the sample corpus.

{before_after()}

## Held-out hybrid weight sweep (Search code, memory backend)
{table(record["weight_sweep"])}

{bench}## Limits
Trained on a few hundred pairs in six domains (medicine, law, finance, technology, public
services, daily life): expansions outside them are rare, and alone it is weaker than BM25 on
general text; at the recommended weight the hybrid stays close to BM25. Data sha256
`{record["data_sha256"][:16]}`; built {record["created"]} in {record["build_s"]:.0f} s.
"""


__all__ = ["model_card"]
