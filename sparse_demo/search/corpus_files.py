"""Corpora from files: uploads (``.jsonl`` / ``.csv`` / ``.tsv``, BEIR folders, zips) and content ids.

Every upload is read under :class:`sparse_demo.limits.Limits`: a zip is refused from its central
directory (entries, declared unpacked bytes, compression ratio) before anything is decompressed,
and its members are then read in 64 KiB chunks that stop at ``SPARSE_DEMO_MAX_UNPACKED_MB`` whatever
the headers declare; documents and characters per document are checked as the files are parsed.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

from sparse_demo.config import load_limits
from sparse_demo.corpus import Corpus, load_corpus
from sparse_demo.limits import Limits

#: The bundled Korean sample corpus (BEIR folder with queries and qrels).
SAMPLE_CORPUS = Path(__file__).resolve().parent.parent.parent / "assets" / "corpus" / "ko_sample"
#: Entries an uploaded zip may hold (a BEIR folder has a handful; ``__MACOSX`` copies double that).
MAX_ZIP_MEMBERS = 1_000
#: Largest unpacked/compressed size ratio of one zip entry over :data:`RATIO_MIN_BYTES` (Korean JSON
#: Lines deflates 3-6x; a run of repeated text about 1000x).
MAX_ZIP_RATIO = 100
RATIO_MIN_BYTES = 1024 * 1024
_CHUNK = 64 * 1024


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


def check_zip_directory(zf: zipfile.ZipFile, name: str, limits: Limits) -> list[zipfile.ZipInfo]:
    """Refuse a zip from its central directory alone, before anything is decompressed.

    Checks the number of entries (:data:`MAX_ZIP_MEMBERS`), the declared unpacked size of all
    entries together (``limits.max_unpacked_bytes``), each entry's compression ratio
    (:data:`MAX_ZIP_RATIO` for entries over :data:`RATIO_MIN_BYTES`), encryption, and paths that
    leave the archive. Declared sizes can lie: :func:`extract_capped` enforces the byte limit again
    while reading.

    Returns:
        The file entries (folders left out).

    Raises:
        ValueError: the first check that fails, naming the limit (and its variable).
    """
    members = zf.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise ValueError(
            f"{name} holds {len(members):,} entries; the limit is {MAX_ZIP_MEMBERS:,} per zip. "
            "Zip one BEIR folder (corpus.jsonl, queries.jsonl, qrels/)."
        )
    total = sum(m.file_size for m in members)
    if total > limits.max_unpacked_bytes:
        raise ValueError(limits.unpacked_error(name, total))
    files = []
    for m in members:
        parts = Path(m.filename.replace("\\", "/")).parts
        if m.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise ValueError(f"the zip entry {m.filename!r} points outside the archive; refusing to unpack it")
        if m.is_dir():
            continue
        if m.flag_bits & 0x1:
            raise ValueError(f"{name}: the entry {m.filename!r} is encrypted; zip it without a password")
        if m.file_size > RATIO_MIN_BYTES and m.file_size > MAX_ZIP_RATIO * max(m.compress_size, 1):
            raise ValueError(
                f"{name}: the entry {m.filename!r} would unpack {m.file_size:,} bytes from "
                f"{m.compress_size:,} (over {MAX_ZIP_RATIO}x, the limit for one entry); this looks like "
                "a zip bomb, not a corpus."
            )
        files.append(m)
    return files


def extract_capped(
    zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], dest: Path, limits: Limits, name: str = "the zip"
) -> None:
    """Unpack ``members`` under ``dest`` in bounded chunks, stopping at ``limits.max_unpacked_bytes``.

    The count is of bytes actually decompressed (whatever the headers declare), across all members;
    the write that would pass the limit is never made.

    Raises:
        ValueError: more than the limit (named with its variable), or a path outside ``dest``.
    """
    root = dest.resolve()
    budget = limits.max_unpacked_bytes
    written = 0
    for m in members:
        target = (dest / m.filename).resolve()
        if not target.is_relative_to(root):
            raise ValueError(f"the zip entry {m.filename!r} points outside the archive; refusing to unpack it")
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(m) as src, open(target, "wb") as out:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > budget:
                    raise ValueError(limits.unpacked_error(name, budget, more=True))
                out.write(chunk)


def _beir_folder(members: list[zipfile.ZipInfo], name: str) -> tuple[str, list[zipfile.ZipInfo]]:
    """The BEIR folder inside the zip (the one holding ``corpus.jsonl``, at most two levels down) and
    the entries a BEIR load reads from it (``corpus.jsonl``, ``queries.jsonl``, ``qrels/*.tsv``)."""
    tops = sorted(
        {
            m.filename[: -len("corpus.jsonl")]
            for m in members
            if Path(m.filename).name == "corpus.jsonl"
            and len(Path(m.filename).parts) <= 3
            and "__MACOSX" not in Path(m.filename).parts
        }
    )
    if not tops:
        raise ValueError(f"{name}: no corpus.jsonl inside; zip a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    if len(tops) > 1:
        names = ", ".join(t.rstrip("/") or "." for t in tops[:5])
        raise ValueError(f"{name} holds several BEIR folders ({names}); zip one at a time")
    top = tops[0]
    wanted = []
    for m in members:
        rest = m.filename[len(top) :] if m.filename.startswith(top) else None
        if rest in ("corpus.jsonl", "queries.jsonl") or (
            rest and rest.startswith("qrels/") and rest.count("/") == 1 and rest.endswith(".tsv")
        ):
            wanted.append(m)
    return top, wanted


def _reason(exc: BaseException) -> str:
    """An exception as one short line (zip and zlib messages can span lines)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def load_corpus_file(
    path: str | Path, *, workdir: str | Path | None = None, limits: Limits | None = None, split: str = "test"
) -> Corpus:
    """Load an uploaded corpus: ``.jsonl`` / ``.csv`` / ``.tsv``, a BEIR folder, or a zip of one.

    A zip is refused from its central directory before anything is decompressed
    (:func:`check_zip_directory`); then only its BEIR folder's files (the folder holding
    ``corpus.jsonl``, at the top or one level down) are unpacked, in bounded chunks
    (:func:`extract_capped`), into a fresh folder under ``workdir`` that is removed afterwards.
    Every format is then read under the documents and characters limits.

    Args:
        path: the uploaded file or folder.
        workdir: where a zip is unpacked (default: the system's temporary folder).
        limits: the limits (default: :func:`sparse_demo.config.load_limits`, so the CLI honours the same variables).
        split: the BEIR qrels split.

    Raises:
        ValueError: with a message meant for users, naming the limit and its variable where one applies.
    """
    limits = load_limits() if limits is None else limits
    p = Path(path)
    if p.suffix.lower() != ".zip" or p.is_dir():
        return load_corpus(p, split=split, limits=limits)
    try:
        zf = zipfile.ZipFile(p)
    except FileNotFoundError:
        raise ValueError(f"{p.name}: no such file") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise ValueError(f"{p.name} is not a readable zip file ({_reason(exc)})") from None
    with zf:
        top, wanted = _beir_folder(check_zip_directory(zf, p.name, limits), p.name)
        dest = Path(tempfile.mkdtemp(prefix="corpus_", dir=workdir))
        try:
            try:
                extract_capped(zf, wanted, dest, limits, p.name)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as exc:
                raise ValueError(f"{p.name} is a corrupt or unsupported zip file ({_reason(exc)})") from None
            corpus = load_corpus(dest / top if top else dest, split=split, limits=limits)
        finally:
            shutil.rmtree(dest, ignore_errors=True)
    if not top:
        corpus.name = p.stem
    return corpus
