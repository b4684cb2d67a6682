"""Corpora from files: uploads (``.jsonl`` / ``.csv`` / ``.tsv``, BEIR folders, zips) and content ids."""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

from sparse_demo.corpus import Corpus, load_corpus

#: The bundled Korean sample corpus (BEIR folder with queries and qrels).
SAMPLE_CORPUS = Path(__file__).resolve().parent.parent.parent / "assets" / "corpus" / "ko_sample"
#: Limits for an uploaded zip of a BEIR folder.
MAX_ZIP_MEMBERS = 10_000
MAX_ZIP_BYTES = 500 * 1024 * 1024


def corpus_fingerprint(corpus: Corpus) -> str:
    """A content hash of the documents (ids, titles, texts): equal content, equal id (:attr:`Corpus.fingerprint`)."""
    return corpus.fingerprint


def corpus_id(corpus: Corpus) -> str:
    """``<name>-<content hash>``: the corpus part of an index key."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", corpus.name.lower()).strip("-")[:40] or "corpus"
    return f"{slug}-{corpus_fingerprint(corpus)}"


def load_sample_corpus() -> Corpus:
    """The bundled Korean sample corpus (313 passages, queries and qrels)."""
    return load_corpus(SAMPLE_CORPUS)


def _safe_extract(zf: zipfile.ZipFile, dest: Path) -> None:
    members = zf.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise ValueError(f"the zip holds {len(members):,} entries; the limit is {MAX_ZIP_MEMBERS:,}")
    total = sum(m.file_size for m in members)
    if total > MAX_ZIP_BYTES:
        raise ValueError(f"the zip unpacks to {total:,} bytes; the limit is {MAX_ZIP_BYTES:,}")
    root = dest.resolve()
    for m in members:
        target = (dest / m.filename).resolve()
        if not target.is_relative_to(root):
            raise ValueError(f"the zip entry {m.filename!r} points outside the archive; refusing to unpack it")
    zf.extractall(dest)


def _reason(exc: BaseException) -> str:
    """An exception as one short line (zip and zlib messages can span lines)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def load_corpus_file(path: str | Path, *, workdir: str | Path | None = None) -> Corpus:
    """Load an uploaded corpus: ``.jsonl`` / ``.csv`` / ``.tsv``, a BEIR folder, or a zip of one.

    A zip is unpacked (size-limited, no paths outside it) into a fresh folder under
    ``workdir``; its BEIR folder is the one holding ``corpus.jsonl`` (at the top or one
    level down).

    Raises:
        ValueError: with a message meant for users.
    """
    p = Path(path)
    if p.suffix.lower() != ".zip":
        return load_corpus(p)
    try:
        zf = zipfile.ZipFile(p)
    except FileNotFoundError:
        raise ValueError(f"{p.name}: no such file") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise ValueError(f"{p.name} is not a readable zip file ({_reason(exc)})") from None
    dest = Path(tempfile.mkdtemp(prefix="corpus_", dir=workdir))
    try:
        with zf:
            try:
                _safe_extract(zf, dest)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as exc:
                raise ValueError(f"{p.name} is a corrupt or unsupported zip file ({_reason(exc)})") from None
        found = sorted(c.parent for c in dest.rglob("corpus.jsonl") if len(c.relative_to(dest).parts) <= 3)
        found = [f for f in found if "__MACOSX" not in f.parts]
        if not found:
            raise ValueError(
                f"{p.name}: no corpus.jsonl inside; zip a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)"
            )
        if len(found) > 1:
            names = ", ".join(str(f.relative_to(dest)) or "." for f in found[:5])
            raise ValueError(f"{p.name} holds several BEIR folders ({names}); zip one at a time")
        corpus = load_corpus(found[0])
        if found[0] == dest:
            corpus.name = p.stem
        return corpus
    finally:
        shutil.rmtree(dest, ignore_errors=True)
