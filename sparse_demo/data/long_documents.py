"""Long documents from a judged set of short passages: paragraphs joined, the judged one at a known depth.

Real corpora (manuals, laws, Wikipedia, news) are mostly longer than a SPLADE model's 192 tokens, while
the benchmark sets here (BoolQ paragraphs, KorSTS sentences) are short. :func:`join_paragraphs` turns a
judged corpus of passages into one of multi-paragraph documents: the passages are shuffled (seeded) into
groups of ``per_document``, each group joined with blank lines into one document, and every judgement of
a passage moves to the document holding it. The paragraph index of the judged passage in its document
(its *depth*) is returned per query, so a benchmark can report quality by depth (a model that reads only
the first 192 tokens finds the paragraphs at depth 0 and misses the later ones).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sparse_demo.corpus import Corpus, Document


@dataclass(frozen=True)
class LongDocuments:
    """A judged corpus of joined documents and, per query, where its judged passage sits.

    Attributes:
        corpus: documents ``L0``, ``L1``, ...; the queries of the source corpus, judged to the document
            holding their passage (grade kept; a query whose passages share a document keeps the highest).
        depth: ``query id -> paragraph index`` (0-based) of the query's first judged passage.
        char_offset: ``query id -> character offset`` of that passage in its document.
    """

    corpus: Corpus
    depth: dict[str, int]
    char_offset: dict[str, int]


def join_paragraphs(source: Corpus, per_document: int = 4, *, seed: int = 0, sep: str = "\n\n") -> LongDocuments:
    """Join ``source``'s passages into documents of ``per_document`` paragraphs (the last group may be shorter).

    Example:
        >>> from sparse_demo.corpus import Query
        >>> src = Corpus("s", [Document(f"p{i}", f"문단 {i}") for i in range(5)], [Query("q", "문단 3")],
        ...              {"q": {"p3": 1}})
        >>> out = join_paragraphs(src, per_document=2, seed=1)
        >>> [d.id for d in out.corpus.documents], out.corpus.qrels
        (['L0', 'L1', 'L2'], {'q': {'L0': 1}})
        >>> out.corpus.get("L0").text.split(), out.depth["q"], out.char_offset["q"]
        (['문단', '2', '문단', '3'], 1, 6)
    """
    if per_document < 1:
        raise ValueError(f"per_document must be >= 1, got {per_document}")
    order = list(source.documents)
    random.Random(seed).shuffle(order)
    documents: list[Document] = []
    home: dict[str, tuple[str, int, int]] = {}  # passage id -> (document id, paragraph index, char offset)
    for g in range(0, len(order), per_document):
        doc_id = f"L{len(documents)}"
        parts: list[str] = []
        offset = 0
        for j, passage in enumerate(order[g : g + per_document]):
            text = f"{passage.title}\n{passage.text}" if passage.title else passage.text
            home[passage.id] = (doc_id, j, offset)
            parts.append(text)
            offset += len(text) + len(sep)
        documents.append(Document(doc_id, sep.join(parts)))
    qrels: dict[str, dict[str, int]] = {}
    depth: dict[str, int] = {}
    char_offset: dict[str, int] = {}
    for qid, judged in source.qrels.items():
        for pid, grade in judged.items():
            if pid not in home:
                continue
            doc_id, j, offset = home[pid]
            row = qrels.setdefault(qid, {})
            row[doc_id] = max(grade, row.get(doc_id, grade))
            if grade > 0 and qid not in depth:
                depth[qid], char_offset[qid] = j, offset
    name = f"{source.name}, {per_document} paragraphs per document"
    corpus = Corpus(name, documents, list(source.queries), qrels)
    return LongDocuments(corpus, depth, char_offset)


__all__ = ["LongDocuments", "join_paragraphs"]
