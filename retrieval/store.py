"""The index on disk: generations saved atomically, loaded memory-mapped, one writer at a time.

An index directory holds generations (`gen-*` folders of .npy arrays and JSON), a file
`CURRENT` naming the complete one, and `LOCK`, which the one process allowed to write holds.
A generation is written in full, then CURRENT is replaced with an atomic rename, so a process
killed while saving leaves the previous generation in force. A generation that fails any check
on load raises IndexCorrupt (the Library then rebuilds it), never serves.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from retrieval.models import Article, Paragraph, Passage
from retrieval.scoring import Postings, tf_weights

log = logging.getLogger(__name__)

FORMAT_VERSION = 9  # bump when the stored arrays or what becomes a passage change
# Arrays of a draft. Two fields, each term-major postings with its documents' lengths:
# passages (what answers) and articles (the evidence of what a passage is about).
ARRAYS = (
    "passage_indptr",  # term t's postings are [indptr[t], indptr[t + 1])
    "passage_indices",  # the passage number of each posting
    "passage_tf",
    "passage_len",  # terms in each passage
    "passage_article",  # the article number of each passage
    "passage_ordinal",  # the passage's position in its article
    "passage_cues",  # the kinds of answer it shows (retrieval.cues)
    "article_indptr",
    "article_indices",  # the article number of each posting
    "article_tf",
    "article_len",
    "article_json",  # every article and its passages, zlib-compressed JSON, end to end
    "article_json_offsets",
    "article_passage_start",  # article a's passages are [start[a], start[a + 1])
    "article_published_ms",
)
# Each field's posting weights, the tf part of BM25 (see scoring.tf_weights), derived.
WEIGHTS = ("passage_weight", "article_weight")


class IndexCorrupt(Exception):
    """A saved generation is incomplete or inconsistent."""


class IndexBusy(Exception):
    """Another process holds the index directory's write lock."""


@dataclass(frozen=True)
class FileRecord:
    """What the index knows of one seed file, to tell next time whether it changed."""

    size: int
    mtime_ns: int
    url: str | None = None
    published_ms: int = 0
    error: str | None = None
    article_number: int | None = None  # None: skipped, or shadowed by a newer copy of its URL


@dataclass(frozen=True)
class IndexDraft:
    """A generation as built, before its posting weights exist: `save` writes it (computing
    the weights on the way) and `load` serves it; `Index.in_memory` serves it unsaved."""

    fingerprint: str
    files: Mapping[str, FileRecord]
    arrays: Mapping[str, np.ndarray]  # the ARRAYS
    terms: list[str]
    names: dict[str, str]  # Chinese names glossed in English in some article → the gloss

    @property
    def n_passages(self) -> int:
        return int(self.arrays["passage_len"].shape[0])

    @property
    def n_articles(self) -> int:
        return int(self.arrays["article_len"].shape[0])

    def weights(self, field: str) -> Iterator[np.ndarray]:
        """The posting weights of a field ("passage" or "article"), in chunks."""
        a = self.arrays
        return tf_weights(a[f"{field}_indices"], a[f"{field}_tf"], a[f"{field}_len"])


@dataclass(frozen=True)
class Index:
    """A servable generation (arrays memory-mapped when loaded). Immutable."""

    draft: IndexDraft
    weights: Mapping[str, np.ndarray]  # the WEIGHTS: float64, one per posting of the field
    vocab: dict[str, int]
    generation: str | None = None  # the saved generation it was loaded from; None: unsaved

    @classmethod
    def in_memory(cls, draft: IndexDraft) -> Index:
        """Serve a draft that could not be saved: weights computed in memory."""
        weights = {}
        for field in ("passage", "article"):
            chunks = list(draft.weights(field))
            weights[f"{field}_weight"] = (
                np.concatenate(chunks) if chunks else np.empty(0, np.float64)
            )
        return cls(draft, weights, {t: i for i, t in enumerate(draft.terms)})

    @property
    def fingerprint(self) -> str:
        return self.draft.fingerprint

    @property
    def files(self) -> Mapping[str, FileRecord]:
        return self.draft.files

    @property
    def names(self) -> dict[str, str]:
        return self.draft.names

    @property
    def arrays(self) -> Mapping[str, np.ndarray]:
        return self.draft.arrays

    @property
    def n_passages(self) -> int:
        return self.draft.n_passages

    @property
    def n_articles(self) -> int:
        return self.draft.n_articles

    def postings(self, field: str) -> Postings:
        """The postings of "passage" or "article" documents, ready to score."""
        a = self.draft.arrays
        n_docs = self.n_passages if field == "passage" else self.n_articles
        return Postings(
            a[f"{field}_indptr"], a[f"{field}_indices"], self.weights[f"{field}_weight"], n_docs
        )

    def article(self, number: int) -> tuple[Article, list[Passage]]:
        """An article and its passages, as indexed."""
        a = self.arrays
        lo, hi = a["article_json_offsets"][number], a["article_json_offsets"][number + 1]
        return decode_article(a["article_json"][lo:hi].tobytes())


# --- articles as stored ------------------------------------------------------------------------


def encode_article(article: Article, passages: list[Passage]) -> bytes:
    """An article and its passages as stored: compressed JSON (article texts are half an
    index's size). The passages are stored, not derived again, so that answering never
    parses or splits text."""
    data = asdict(article)
    data["published"] = article.published.isoformat()
    data["paragraphs"] = [[p.text, p.section] for p in article.paragraphs]
    data["passages"] = [[p.text, p.section] for p in passages]
    return zlib.compress(json.dumps(data, ensure_ascii=False).encode("utf-8"), 1)


def decode_article(blob: bytes) -> tuple[Article, list[Passage]]:
    data = json.loads(zlib.decompress(blob).decode("utf-8"))
    data["published"] = datetime.fromisoformat(data["published"])
    data["paragraphs"] = tuple(Paragraph(t, s) for t, s in data["paragraphs"])
    data["captions"] = tuple(data["captions"])
    passages = data.pop("passages")
    article = Article(**data)
    return article, [
        Passage(id=f"{article.id}:{i}", ordinal=i, text=t, section=s)
        for i, (t, s) in enumerate(passages)
    ]


# --- one writer --------------------------------------------------------------------------------


@contextmanager
def writer_lock(index_dir: Path, wait_seconds: float) -> Iterator[None]:
    """Hold the index directory's write lock; raise IndexBusy after `wait_seconds`.

    An advisory lock on `LOCK` (flock): the kernel drops it when its process dies, so a
    killed writer never leaves the directory locked."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / "LOCK", "a+b") as fh:
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexBusy(
                        f"another process is writing the index in {index_dir}"
                    ) from None
                if not told:
                    log.info("waiting for another process that is writing %s", index_dir)
                    told = True
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- saving ------------------------------------------------------------------------------------


def save(index_dir: Path, draft: IndexDraft) -> Path:
    """Write a new generation and make it current atomically; older generations are removed.

    Call with the writer_lock held: removing the other generations is safe only then."""
    index_dir.mkdir(parents=True, exist_ok=True)
    gen = Path(tempfile.mkdtemp(prefix=f"gen-{time.strftime('%Y%m%d%H%M%S')}-", dir=index_dir))
    sizes = {}
    for name in ARRAYS:
        array = draft.arrays[name]
        np.save(gen / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        sizes[name] = [str(array.dtype), list(array.shape)]
    # Posting weights depend on every document's length (through the average), so each
    # generation stores its own, streamed to the file chunk by chunk rather than held.
    for field in ("passage", "article"):
        shape = (int(draft.arrays[f"{field}_indices"].shape[0]),)
        with open(gen / f"{field}_weight.npy", "wb") as fh:
            header = {"descr": np.dtype(np.float64).str, "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(fh, header)
            for chunk in draft.weights(field):
                fh.write(chunk.tobytes())
        sizes[f"{field}_weight"] = ["float64", list(shape)]
    (gen / "terms.txt").write_text("\n".join(draft.terms), encoding="utf-8")
    meta = {"files": {p: asdict(r) for p, r in draft.files.items()}, "names": draft.names}
    (gen / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    manifest = {
        "format": FORMAT_VERSION,
        "fingerprint": draft.fingerprint,
        "arrays": sizes,
        "n_terms": len(draft.terms),
        "meta_bytes": (gen / "meta.json").stat().st_size,
        "terms_bytes": (gen / "terms.txt").stat().st_size,
        "saved": datetime.now(UTC).isoformat(),
    }
    # the manifest goes last: a generation without one was never finished
    _write_synced(gen / "manifest.json", json.dumps(manifest).encode())
    for path in gen.iterdir():
        _fsync(path)
    pointer = index_dir / "CURRENT"
    _write_synced(index_dir / f".CURRENT.{os.getpid()}", gen.name.encode())
    os.replace(index_dir / f".CURRENT.{os.getpid()}", pointer)
    _fsync(index_dir)
    for other in index_dir.glob("gen-*"):
        if other != gen and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
    return gen


def _write_synced(path: Path, payload: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- loading -----------------------------------------------------------------------------------


def load(index_dir: Path) -> Index | None:
    """The current generation, or None if there is none. Raises IndexCorrupt if it is broken.

    Needs no lock: a writer replaces CURRENT atomically and then removes the generation it
    replaced, so a reader that lost that race finds CURRENT changed and reads the new one."""
    for _ in range(3):
        name = current_generation(index_dir)
        if name is None:
            return None
        try:
            return _read_generation(index_dir / name)
        except (IndexCorrupt, OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            # every malformed input lands here: missing keys, wrong types, bad arrays
            if current_generation(index_dir) == name:
                if isinstance(exc, IndexCorrupt):
                    raise
                raise IndexCorrupt(f"{type(exc).__name__}: {exc}") from exc
    raise IndexCorrupt("CURRENT keeps changing")


def current_generation(index_dir: Path) -> str | None:
    """The name of the generation CURRENT points at, None when there is none yet."""
    try:
        return (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorrupt(f"CURRENT: {exc}") from exc


def _json_object(path: Path) -> dict:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise IndexCorrupt(f"{path.name} is not a JSON object")
    return value


def _read_generation(gen: Path) -> Index:
    manifest = _json_object(gen / "manifest.json")
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexCorrupt(f"index format {manifest.get('format')}, expected {FORMAT_VERSION}")
    for name, size_key in (("meta.json", "meta_bytes"), ("terms.txt", "terms_bytes")):
        if (gen / name).stat().st_size != manifest[size_key]:
            raise IndexCorrupt(f"{name} has the wrong size")
    arrays = {}
    for name in (*ARRAYS, *WEIGHTS):
        array = np.load(gen / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        dtype, shape = manifest["arrays"][name]
        if str(array.dtype) != dtype or list(array.shape) != shape:
            raise IndexCorrupt(f"{name}.npy does not match the manifest")
        arrays[name] = array
    meta = _json_object(gen / "meta.json")
    text = (gen / "terms.txt").read_text(encoding="utf-8")
    terms = text.split("\n") if text else []
    if len(terms) != manifest["n_terms"]:
        raise IndexCorrupt("terms.txt does not match the manifest")
    weights = {name: arrays.pop(name) for name in WEIGHTS}
    _check_consistent(arrays, weights, len(terms))
    files = {str(p): FileRecord(**r) for p, r in meta["files"].items()}
    names = {str(k): str(v) for k, v in meta["names"].items()}
    draft = IndexDraft(str(manifest["fingerprint"]), files, arrays, terms, names)
    return Index(draft, weights, dict(zip(terms, range(len(terms)), strict=True)), gen.name)


def _check_consistent(
    a: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray], n_terms: int
) -> None:
    n_passages = a["passage_len"].shape[0]
    n_articles = a["article_len"].shape[0]
    checks = [
        (a[f"{f}_indptr"].shape[0] == n_terms + 1, f"{f} postings: term count")
        for f in ("passage", "article")
    ]
    checks += [
        (
            int(a[f"{f}_indptr"][-1])
            == a[f"{f}_indices"].shape[0]
            == a[f"{f}_tf"].shape[0]
            == weights[f"{f}_weight"].shape[0],
            f"{f} postings: length",
        )
        for f in ("passage", "article")
    ]
    checks += [
        (
            a["passage_ordinal"].shape[0]
            == a["passage_article"].shape[0]
            == a["passage_cues"].shape[0]
            == n_passages,
            "passage arrays",
        ),
        (
            a["article_passage_start"].shape[0]
            == a["article_json_offsets"].shape[0]
            == a["article_published_ms"].shape[0] + 1
            == n_articles + 1,
            "article arrays",
        ),
        (int(a["article_passage_start"][-1]) == n_passages, "article passage count"),
        (int(a["article_json_offsets"][-1]) == a["article_json"].shape[0], "article text length"),
    ]
    for ok, what in checks:
        if not ok:
            raise IndexCorrupt(f"inconsistent index: {what}")
