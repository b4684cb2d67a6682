"""The Korean BM25 analyzer: stop tags checked by hand, specs, errors, and quality against bm25s.

Expected terms were checked by hand against Kiwi's analysis of each sentence (which morpheme
is a particle, an ending, a copula...). The quality test compares BM25 with the default
analyzer to the reference of ``../shared/data/README.md`` (bm25s over Kiwi content morphemes)
computed here, and skips when ``../shared/data`` is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from sparse_demo.index import MemoryBackend
from sparse_demo.index.bm25 import BM25Index
from sparse_demo.index.opensearch import OpenSearchBackend
from sparse_demo.korean import (
    ANALYZER_PRESETS,
    TERMS_CACHE_MAX_CHARS,
    TERMS_CACHE_SIZE,
    BM25Analyzer,
    Morpheme,
    bm25_terms,
    clear_terms_cache,
    get_analyzer,
    morphemes,
    terms_cache_info,
)

QUESTION = "혈당 수치를 낮추려면 어떻게 해야 하나요"
COPULAS = "선생님이 아니다. 학생이다!"
SYMBOLS = "https://a.com 3.5% ABC 漢字"


def tags(terms: list[str]) -> list[str]:
    return [t.rsplit("/", 1)[1] for t in terms]


def test_default_drops_particles_endings_and_auxiliaries():
    # 혈당/NNG 수치/NNG 를/JKO 낮추/VV 려면/EC 어떻/VA-I 게/EC 하/VV 어야/EC 하/VX 나요/EF
    assert get_analyzer().terms(QUESTION) == ["혈당/NNG", "수치/NNG", "낮추/VV", "어떻/VA-I", "하/VV"]
    assert bm25_terms(QUESTION) == get_analyzer("default").terms(QUESTION)
    assert not any(t.startswith(("J", "E")) for t in tags(bm25_terms(QUESTION)))


def test_all_keeps_every_morpheme_but_punctuation():
    assert get_analyzer("all").terms(QUESTION) == [
        "혈당/NNG", "수치/NNG", "를/JKO", "낮추/VV", "려면/EC", "어떻/VA-I",
        "게/EC", "하/VV", "어야/EC", "하/VX", "나요/EF",
    ]  # fmt: skip
    # 선생/NNG 님/XSN 이/JKC 아니/VCN 다/EF ./SF 학생/NNG 이/VCP 다/EF !/SF
    assert bm25_terms(COPULAS, "all") == [
        "선생/NNG", "님/XSN", "이/JKC", "아니/VCN", "다/EF", "학생/NNG", "이/VCP", "다/EF",
    ]  # fmt: skip


def test_default_drops_suffixes_and_copulas():
    assert bm25_terms(COPULAS) == ["선생/NNG", "학생/NNG"]


def test_custom_tag_list_and_prefixes():
    # Particles and endings only: the suffix 님/XSN and both copulas stay.
    assert bm25_terms(COPULAS, "J,E") == ["선생/NNG", "님/XSN", "아니/VCN", "학생/NNG", "이/VCP"]
    # "XSN" as a full tag, "VC" as a prefix of VCP and VCN.
    assert bm25_terms(COPULAS, "J, E, XSN, VC") == ["선생/NNG", "학생/NNG"]
    # A base tag also stops its irregular variants (어떻/VA-I).
    assert bm25_terms(QUESTION, "VA") == [t for t in bm25_terms(QUESTION, "all") if t != "어떻/VA-I"]


@pytest.mark.parametrize("spec", ["default", "all", "nori", "J,E"])
def test_punctuation_and_web_tags_always_dropped(spec):
    # https://a.com/W_URL 3.5/SN %/SW ABC/SL 漢字/SH
    assert bm25_terms(SYMBOLS, spec) == ["3.5/SN", "ABC/SL", "漢字/SH"]


def test_specs_are_canonical():
    assert get_analyzer(" e, J ,j,").spec == "E,J"
    assert get_analyzer("DEFAULT").spec == "default"
    assert get_analyzer("E,J") == get_analyzer("J,E")
    an = get_analyzer("all")
    assert get_analyzer(an) is an
    assert isinstance(an, BM25Analyzer)
    assert an.stoptags == {"SF", "SP", "SS", "SE", "SO", "SW", "W_"}
    assert get_analyzer("default").stoptags >= {"J", "E", "XS", "VCP", "VCN"}
    assert set(ANALYZER_PRESETS) == {"default", "all", "nori"}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("J,XX", r"unknown Kiwi tag 'XX'.*'default', 'all', 'nori'.*NNG"),
        ("NOUNS", r"unknown Kiwi tag 'NOUNS'"),
        (",", r"no tag in analyzer spec ','"),
        ("", r"empty analyzer spec.*'all'"),
        ("   ", r"empty analyzer spec"),
        (None, r"must be a string"),
        (3, r"must be a string"),
    ],
)
def test_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        get_analyzer(spec)


def test_empty_text_has_no_terms():
    assert bm25_terms("") == [] and bm25_terms("  \n") == [] and bm25_terms("?!", "all") == []


def test_terms_from_morphemes_equals_terms():
    an = get_analyzer("nori")
    assert an.terms_from_morphemes(morphemes(QUESTION)) == an.terms(QUESTION)
    assert an.terms_many([QUESTION, COPULAS]) == [an.terms(QUESTION), an.terms(COPULAS)]
    # Whitespace inside a morpheme never reaches a term.
    assert an.terms_from_morphemes([Morpheme("a b", "NNP", 0, 3)]) == ["ab/NNP"]


def test_backends_record_the_analyzer():
    assert MemoryBackend().analyzer.spec == "default"
    assert MemoryBackend(analyzer="J,E").analyzer.spec == "E,J"
    backend = OpenSearchBackend("analyzer-spec-test", analyzer="all")
    assert backend.analyzer == get_analyzer("all")
    assert backend.index_body()["mappings"]["_meta"]["bm25_analyzer"] == "all"
    with pytest.raises(ValueError, match="unknown Kiwi tag"):
        MemoryBackend(analyzer="J,QQ")
    with pytest.raises(ValueError, match="unknown Kiwi tag"):
        OpenSearchBackend("analyzer-spec-test", analyzer="QQ")


# --- quality against the bm25s + Kiwi content-morpheme reference ------------------------

#: The reference's content tags (``../shared/data/README.md``), matched exactly.
REFERENCE_TAGS = frozenset({"NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "MAG", "SL", "SH", "SN", "XR"})


def r_at_1(rankings: list[list[int]], gold: list[set[int]]) -> float:
    return sum(bool(r) and r[0] in g for r, g in zip(rankings, gold)) / len(gold)


def reference_top1(doc_terms: list[list[str]], query_terms: list[list[str]]) -> list[list[int]]:
    bm25s = pytest.importorskip("bm25s")
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in terms] for terms in doc_terms]
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    out = []
    for q in query_terms:
        qids = [vocab[t] for t in q if t in vocab]
        scores = ref.get_scores(qids) if qids else np.zeros(1)
        best = int(np.argmax(scores))
        out.append([best] if scores[best] > 0 else [])
    return out


def ours_top1(doc_terms: list[list[str]], query_terms: list[list[str]]) -> list[list[int]]:
    index = BM25Index()
    index.add([f"{i:06d}" for i in range(len(doc_terms))], doc_terms)
    return [[int(h.id) for h in index.search(q, 1)] if q else [] for q in query_terms]


def _shared_sets():
    try:
        from sparse_demo.data import load_boolq, load_korsts

        boolq = load_boolq("test")[1]
        korsts = load_korsts("test", min_score=4.0, corpus_from="all")[1]
    except FileNotFoundError as exc:
        pytest.skip(f"../shared/data is absent: {exc}")
    # BoolQ's corpus is cut to the test split's own paragraphs (1,403 of 5,757) to keep Kiwi's
    # analysis under a minute; bench_analyzer.py measures the full corpus.
    return [_as_rows("BoolQ test", boolq, test_only=True), _as_rows("KorSTS test >= 4", korsts)]


def _as_rows(name, judged, test_only=False):
    """``(name, doc texts, query texts, gold row sets)`` of a judged corpus (docs cut to the judged ones)."""
    row = {d.id: i for i, d in enumerate(judged.documents)}
    used = sorted({row[d] for q in judged.queries for d in judged.qrels[q.id]}) if test_only else list(row.values())
    new_row = {d: i for i, d in enumerate(used)}
    docs = [judged.documents[d].text for d in used]
    gold = [{new_row[row[d]] for d in judged.qrels[q.id]} for q in judged.queries]
    return name, docs, [q.text for q in judged.queries], gold


@pytest.mark.slow
def test_default_analyzer_within_one_point_of_content_morpheme_reference():
    default = get_analyzer("default")
    for name, docs, queries, gold in _shared_sets():
        doc_m = [morphemes(t) for t in docs]  # analysed once, filtered twice
        q_m = [morphemes(q) for q in queries]
        ours = r_at_1(
            ours_top1([default.terms_from_morphemes(m) for m in doc_m], [default.terms_from_morphemes(m) for m in q_m]),
            gold,
        )
        ref_terms = [[f"{x.form}/{x.tag}" for x in m if x.tag in REFERENCE_TAGS] for m in doc_m]
        ref_queries = [[f"{x.form}/{x.tag}" for x in m if x.tag in REFERENCE_TAGS] for m in q_m]
        ref = r_at_1(reference_top1(ref_terms, ref_queries), gold)
        assert ours >= ref - 0.01, f"{name}: R@1 {ours:.3f} vs reference {ref:.3f}"


# --- the terms cache ----------------------------------------------------------------------


def _uncached(analyzer: BM25Analyzer, text: str) -> list[str]:
    """The analysis without the cache: Kiwi's tokens filtered by the analyzer's stop tags."""
    return analyzer.terms_from_morphemes(morphemes(text))


def _real_texts(n: int) -> list[str]:
    try:
        from sparse_demo.data import load_boolq

        return [d.text for d in load_boolq("test")[1].documents[:n]]
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("spec", ["default", "all", "nori", "J,E"])
def test_cached_terms_equal_the_uncached_analysis(spec):
    analyzer = get_analyzer(spec)
    texts = [QUESTION, COPULAS, SYMBOLS, "", "  ", *_real_texts(40)]
    first = [analyzer.terms(t) for t in texts]  # fills the cache (or hits an earlier test's entries)
    again = [analyzer.terms(t) for t in texts]  # served by the cache
    want = [_uncached(analyzer, t) for t in texts]
    assert first == want and again == want
    assert all(isinstance(terms, list) for terms in again)


def test_cache_is_keyed_by_analyzer_and_counts_hits():
    clear_terms_cache()
    assert terms_cache_info().currsize == 0
    default, everything = get_analyzer("default"), get_analyzer("all")
    assert default.terms(COPULAS) == ["선생/NNG", "학생/NNG"]
    assert everything.terms(COPULAS) == [
        "선생/NNG", "님/XSN", "이/JKC", "아니/VCN", "다/EF", "학생/NNG", "이/VCP", "다/EF",
    ]  # fmt: skip
    assert default.terms(COPULAS) == ["선생/NNG", "학생/NNG"]
    info = terms_cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 2, 2)
    assert info.maxsize == TERMS_CACHE_SIZE


def test_callers_cannot_change_cached_terms():
    analyzer = get_analyzer("default")
    got = analyzer.terms(QUESTION)
    got.append("x/NNG")
    got[0] = "changed"
    analyzer.terms_many([QUESTION])[0].clear()
    bm25_terms(QUESTION).pop()
    assert analyzer.terms(QUESTION) == ["혈당/NNG", "수치/NNG", "낮추/VV", "어떻/VA-I", "하/VV"]
    assert analyzer.terms(QUESTION) is not analyzer.terms(QUESTION)


def test_long_texts_bypass_the_cache():
    analyzer = get_analyzer("default")
    long_text = (QUESTION + " ") * (TERMS_CACHE_MAX_CHARS // len(QUESTION) + 1)
    assert len(long_text) > TERMS_CACHE_MAX_CHARS
    before = terms_cache_info()
    terms = analyzer.terms(long_text)
    after = terms_cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)
    assert terms == _uncached(analyzer, long_text)
    assert terms[:5] == ["혈당/NNG", "수치/NNG", "낮추/VV", "어떻/VA-I", "하/VV"]
