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

from retrieval.models import Article, Paragraph
from retrieval.scoring import Postings, tf_weights

log = logging.getLogger(__name__)

FORMAT_VERSION = 8  # bump when the stored arrays or what becomes a passage change
# Arrays of a draft; a servable index adds "weight", the tf part of each posting's score.
ARRAYS = (
    "indptr",  # term t's postings are [indptr[t], indptr[t + 1])
    "indices",  # the passage number of each posting
    "tf",
    "doc_len",  # terms in each passage
    "doc_article",  # the article number of each passage
    "doc_ordinal",  # the passage's position in its article
    "article_json",  # every article, zlib-compressed JSON, end to end
    "article_json_offsets",
    "article_doc_start",  # article a's passages are [start[a], start[a + 1])
    "article_published_ms",
)


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
    def n_docs(self) -> int:
        return int(self.arrays["doc_len"].shape[0])


@dataclass(frozen=True)
class Index:
    """A servable generation (arrays memory-mapped when loaded). Immutable."""

    draft: IndexDraft
    weight: np.ndarray  # float64, one per posting
    vocab: dict[str, int]
    generation: str | None = None  # the saved generation it was loaded from; None: unsaved

    @classmethod
    def in_memory(cls, draft: IndexDraft) -> Index:
        """Serve a draft that could not be saved: weights computed in memory."""
        a = draft.arrays
        chunks = list(tf_weights(a["indices"], a["tf"], a["doc_len"]))
        weight = np.concatenate(chunks) if chunks else np.empty(0, np.float64)
        return cls(draft, weight, {t: i for i, t in enumerate(draft.terms)})

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
    def postings(self) -> Postings:
        a = self.draft.arrays
        return Postings(a["indptr"], a["indices"], self.weight, self.n_docs)

    @property
    def n_docs(self) -> int:
        return self.draft.n_docs

    @property
    def n_articles(self) -> int:
        return int(self.arrays["article_published_ms"].shape[0])

    def article(self, number: int) -> Article:
        a = self.arrays
        lo, hi = a["article_json_offsets"][number], a["article_json_offsets"][number + 1]
        return decode_article(a["article_json"][lo:hi].tobytes())


# --- articles as stored ------------------------------------------------------------------------


def encode_article(article: Article) -> bytes:
    """An article as stored: compressed JSON (article texts are half an index's size)."""
    data = asdict(article)
    data["published"] = article.published.isoformat()
    data["paragraphs"] = [[p.text, p.section] for p in article.paragraphs]
    return zlib.compress(json.dumps(data, ensure_ascii=False).encode("utf-8"), 1)


def decode_article(blob: bytes) -> Article:
    data = json.loads(zlib.decompress(blob).decode("utf-8"))
    data["published"] = datetime.fromisoformat(data["published"])
    data["paragraphs"] = tuple(Paragraph(t, s) for t, s in data["paragraphs"])
    return Article(**data)


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
    # Posting weights depend on every passage's length (through avgdl), so each generation
    # stores its own, streamed to the file chunk by chunk rather than held in memory.
    a = draft.arrays
    shape = (int(a["indices"].shape[0]),)
    with open(gen / "weight.npy", "wb") as fh:
        header = {"descr": np.dtype(np.float64).str, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(fh, header)
        for chunk in tf_weights(a["indices"], a["tf"], a["doc_len"]):
            fh.write(chunk.tobytes())
    sizes["weight"] = ["float64", list(shape)]
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
    for name in (*ARRAYS, "weight"):
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
    weight = arrays.pop("weight")
    _check_consistent(arrays, weight, len(terms))
    files = {str(p): FileRecord(**r) for p, r in meta["files"].items()}
    names = {str(k): str(v) for k, v in meta["names"].items()}
    draft = IndexDraft(str(manifest["fingerprint"]), files, arrays, terms, names)
    return Index(draft, weight, dict(zip(terms, range(len(terms)), strict=True)), gen.name)


def _check_consistent(a: Mapping[str, np.ndarray], weight: np.ndarray, n_terms: int) -> None:
    n_docs = a["doc_len"].shape[0]
    n_articles = a["article_published_ms"].shape[0]
    checks = (
        (a["indptr"].shape[0] == n_terms + 1, "indptr length"),
        (
            int(a["indptr"][-1]) == a["indices"].shape[0] == a["tf"].shape[0] == weight.shape[0],
            "postings length",
        ),
        (a["doc_ordinal"].shape[0] == a["doc_article"].shape[0] == n_docs, "passage arrays"),
        (a["article_doc_start"].shape[0] == n_articles + 1, "article starts"),
        (int(a["article_doc_start"][-1]) == n_docs, "article passage count"),
        (int(a["article_json_offsets"][-1]) == a["article_json"].shape[0], "article text length"),
    )
    for ok, what in checks:
        if not ok:
            raise IndexCorrupt(f"inconsistent index: {what}")
