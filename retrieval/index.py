"""The persistent index: built from seed files, updated incrementally, saved atomically.

An index directory holds generations (`gen-*` folders of .npy arrays and JSON) and a file
`CURRENT` naming the complete one. A generation is written in full, then CURRENT is replaced
with an atomic rename, so a process killed while saving leaves the previous generation in
force; a generation that fails its checks on load is rebuilt, never served.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import sparse

from retrieval.analysis import TITLE_WEIGHT, Analyzer
from retrieval.articles import SeedFormatError, passages_of, read_seed_file
from retrieval.models import Article, Paragraph, Passage
from retrieval.scoring import Postings, tf_weights

log = logging.getLogger(__name__)

FORMAT_VERSION = 6
SEED_SUFFIXES = (".txt", ".md")
PARALLEL_FROM_FILES = 400  # below this, worker start-up costs more than it saves

_ARRAYS = (
    "indptr",
    "indices",
    "tf",
    "weight",
    "doc_len",
    "doc_article",
    "doc_ordinal",
    "article_json",
    "article_json_offsets",
    "article_doc_start",
    "article_published_ms",
)


class IndexCorrupt(Exception):
    """A saved generation is incomplete or inconsistent."""


@dataclass(frozen=True)
class FileRecord:
    """What the index knows of one seed file, to tell next time whether it changed."""

    size: int
    mtime_ns: int
    url: str | None = None
    published_ms: int = 0
    error: str | None = None
    article: int | None = None  # article number in the generation; None if skipped or shadowed


@dataclass(frozen=True)
class IndexData:
    """One generation, loaded (arrays memory-mapped). Immutable: updates make a new one."""

    fingerprint: str
    files: dict[str, FileRecord]
    arrays: dict[str, np.ndarray]
    vocab: dict[str, int]
    terms: list[str]
    names: dict[str, str]  # Chinese names glossed in English in some article → the gloss

    @property
    def postings(self) -> Postings:
        a = self.arrays
        return Postings(a["indptr"], a["indices"], a["weight"], self.n_docs)

    def with_weights(self) -> IndexData:
        """This generation with its posting weights computed in memory (when unsaved)."""
        a = self.arrays
        chunks = list(tf_weights(a["indices"], a["tf"], a["doc_len"]))
        weight = np.concatenate(chunks) if chunks else np.empty(0, np.float64)
        return replace(self, arrays={**a, "weight": weight})

    @property
    def n_docs(self) -> int:
        return int(self.arrays["doc_len"].shape[0])

    @property
    def n_articles(self) -> int:
        return int(self.arrays["article_published_ms"].shape[0])

    def article_of(self, doc: int) -> int:
        return int(self.arrays["doc_article"][doc])

    def article(self, number: int) -> Article:
        a = self.arrays
        lo, hi = a["article_json_offsets"][number], a["article_json_offsets"][number + 1]
        return article_from_json(zlib.decompress(a["article_json"][lo:hi]).decode("utf-8"))


# --- (de)serialising articles ------------------------------------------------------------------


def article_to_json(article: Article) -> str:
    data = asdict(article)
    data["published"] = article.published.isoformat()
    data["paragraphs"] = [[p.text, p.section] for p in article.paragraphs]
    return json.dumps(data, ensure_ascii=False)


def article_from_json(text: str) -> Article:
    data = json.loads(text)
    data["published"] = datetime.fromisoformat(data["published"])
    data["paragraphs"] = tuple(Paragraph(t, s) for t, s in data["paragraphs"])
    return Article(**data)


# --- scanning and parsing ----------------------------------------------------------------------


def scan_seeds(seeds_dir: Path) -> dict[str, tuple[int, int]]:
    """Every seed file under the directory (recursively): relative path → (size, mtime_ns)."""
    found: dict[str, tuple[int, int]] = {}
    for root, dirs, files in os.walk(seeds_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or not name.endswith(SEED_SUFFIXES):
                continue  # hidden files include ingest's half-written temporaries
            path = Path(root, name)
            try:
                st = path.stat()
            except OSError:
                continue  # vanished between listing and stat
            found[path.relative_to(seeds_dir).as_posix()] = (st.st_size, st.st_mtime_ns)
    return found


@dataclass(frozen=True)
class ParsedFile:
    """One seed file, parsed and analysed, as compact arrays (cheap to send between processes).

    Passages are rows of a docs x terms matrix in CSR form: passage i owns doc_nnz[i] entries
    of term_ids / tf. Term ids are local to a batch until `_globalise` maps them.
    """

    path: str
    error: str | None = None
    url: str | None = None
    published_ms: int = 0
    article_json: bytes = b""
    doc_len: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    doc_nnz: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    term_ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    tf: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint16))
    names: dict[str, str] = field(default_factory=dict)

    @property
    def n_docs(self) -> int:
        return int(self.doc_len.shape[0])


class _Vocabulary(dict[str, int]):
    """term → id, numbering new terms on first sight (a C-speed lookup for known ones)."""

    def __missing__(self, term: str) -> int:
        self[term] = number = len(self)
        return number


_worker_analyzer: Analyzer | None = None


def _init_worker(analyzer: Analyzer) -> None:
    global _worker_analyzer
    _worker_analyzer = analyzer


def article_terms(
    article: Article, passages: list[Passage], analyzer: Analyzer
) -> tuple[dict[str, str], list[list[str]]]:
    """The names an article glosses, and the index terms of each of its passages."""
    names = analyzer.glossed_names(
        "\n".join([article.caption or "", *(p.text for p in article.paragraphs)])
    )
    # A passage is indexed with its article's title, which says what the passage is about
    # (a BM25F-style field weight; CMRC R@1 .913 without, .958 once, .972 twice).
    title_terms = analyzer.terms(article.title, names) * TITLE_WEIGHT
    return names, [analyzer.terms(p.text, names) + title_terms for p in passages]


def _parse_file(seeds_dir: str, rel: str, analyzer: Analyzer, vocab: _Vocabulary) -> ParsedFile:
    try:
        article = read_seed_file(Path(seeds_dir, rel), rel)
    except SeedFormatError as exc:
        return ParsedFile(rel, error=str(exc))
    passages = passages_of(article)
    names, passage_terms = article_terms(article, passages, analyzer)
    ids: list[int] = []
    lengths = []
    for terms in passage_terms:
        ids += map(vocab.__getitem__, terms)
        lengths.append(len(terms))
    doc_len = np.asarray(lengths, np.int64)
    # count each (passage, term) pair once: the CSR rows of this file
    keys = np.repeat(np.arange(len(passages), dtype=np.int64), doc_len) << 32
    keys |= np.asarray(ids, np.int64)
    unique, counts = np.unique(keys, return_counts=True)
    return ParsedFile(
        rel,
        url=article.url,
        published_ms=int(article.published.timestamp() * 1000),
        # compressed: article texts are the largest part of an index (half the size)
        article_json=zlib.compress(article_to_json(article).encode("utf-8"), 1),
        doc_len=doc_len,
        doc_nnz=np.bincount(unique >> 32, minlength=len(passages)).astype(np.int64),
        term_ids=(unique & 0xFFFFFFFF).astype(np.int32),
        tf=np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16),
        names=names,
    )


def _parse_chunk(
    seeds_dir: str, paths: list[str], analyzer: Analyzer | None = None
) -> tuple[list[str], list[ParsedFile]]:
    """Parse and analyse some files; term ids are local to the returned vocabulary."""
    analyzer = analyzer or _worker_analyzer
    assert analyzer is not None
    vocab = _Vocabulary()
    files = [_parse_file(seeds_dir, rel, analyzer, vocab) for rel in paths]
    return list(vocab), files


def parse_files(
    seeds_dir: Path, paths: list[str], analyzer: Analyzer, vocab: dict[str, int], workers: int
) -> list[ParsedFile]:
    """Parse files (in worker processes when there are many); term ids become global ids."""
    if not paths:
        return []
    if workers > 1 and len(paths) >= PARALLEL_FROM_FILES:
        size = max(50, len(paths) // (workers * 8))
        chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(analyzer,)) as pool:
            results = pool.map(_parse_chunk, [str(seeds_dir)] * len(chunks), chunks)
            return [f for local, files in results for f in _globalise(local, files, vocab)]
    local, files = _parse_chunk(str(seeds_dir), paths, analyzer)
    return _globalise(local, files, vocab)


def _globalise(
    local: list[str], files: list[ParsedFile], vocab: dict[str, int]
) -> list[ParsedFile]:
    mapping = np.fromiter((vocab.setdefault(t, len(vocab)) for t in local), np.int32, len(local))
    return [replace(f, term_ids=mapping[f.term_ids]) if f.term_ids.size else f for f in files]


# --- building a generation ---------------------------------------------------------------------


def update(
    seeds_dir: Path, analyzer: Analyzer, old: IndexData | None, workers: int = 1
) -> IndexData | None:
    """The index for the seeds directory as it is now, reusing `old` for unchanged files.

    Returns None when nothing changed since `old`. Only new and changed files are parsed.
    """
    current = scan_seeds(seeds_dir)
    if old is not None and old.fingerprint != analyzer.fingerprint:
        log.info("analyzer changed: rebuilding the index")
        old = None
    old_files = old.files if old else {}
    changed = sorted(
        p
        for p, st in current.items()
        if p not in old_files or (old_files[p].size, old_files[p].mtime_ns) != st
    )
    removed = [p for p in old_files if p not in current]
    if old is not None and not changed and not removed:
        return None

    vocab = dict(old.vocab) if old else {}
    parsed = {f.path: f for f in parse_files(seeds_dir, changed, analyzer, vocab, workers)}
    for f in parsed.values():
        if f.error:
            log.warning("skipped seed file %s: %s", f.path, f.error)

    def record(path: str) -> FileRecord:
        if path in parsed:
            f = parsed[path]
            size, mtime = current[path]
            return FileRecord(size, mtime, f.url, f.published_ms, f.error)
        return old_files[path]

    records = {p: record(p) for p in sorted(current)}
    winners = _newest_per_url(records)
    revived = sorted(p for p in winners if p not in parsed and records[p].article is None)
    for f in parse_files(seeds_dir, revived, analyzer, vocab, workers):
        parsed[f.path] = f

    kept = sorted((p for p in winners if p not in parsed), key=lambda p: records[p].article or 0)
    # popped, so that _assemble holds the only reference and can release each file it copies
    fresh = [parsed.pop(p) for p in sorted(winners) if p in parsed]
    return _assemble(analyzer.fingerprint, old, records, kept, fresh, vocab)


def _newest_per_url(records: dict[str, FileRecord]) -> set[str]:
    best: dict[str, str] = {}
    for path, rec in records.items():
        if rec.url is None:
            continue
        other = best.get(rec.url)
        if other is None or (rec.published_ms, path) > (records[other].published_ms, other):
            if other is not None:
                log.info("%s and %s hold the same article; indexing the newer", path, other)
            best[rec.url] = path
    return set(best.values())


def _assemble(
    fingerprint: str,
    old: IndexData | None,
    records: dict[str, FileRecord],
    kept: list[str],
    fresh: list[ParsedFile],
    vocab: dict[str, int],
) -> IndexData:
    """A new generation: the kept files' passages taken from `old`, then the fresh files'.

    Memory matters at a million passages: postings go straight into their term-major arrays
    (no doc-major copy beside them), and each fresh file is released once it is copied.
    """
    n_terms = len(vocab)
    names = dict(old.names) if old else {}
    kept_blocks: list[_RowBlock] = []
    numbers = np.array([records[p].article for p in kept], dtype=np.int64)
    if old is not None and kept:
        oa = old.arrays
        starts, ends = oa["article_doc_start"][numbers], oa["article_doc_start"][numbers + 1]
        rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
        shape = (old.n_docs, len(old.terms))
        old_rows = sparse.csc_matrix((oa["tf"], oa["indices"], oa["indptr"]), shape=shape).tocsr()
        for lo in range(0, rows.shape[0], 50_000):  # bounded temporaries for the scatter
            part = old_rows[rows[lo : lo + 50_000]]
            kept_blocks.append(_RowBlock(np.diff(part.indptr), part.indices, part.data))
        del old_rows
        kept_json = _gather_bytes(oa["article_json"], oa["article_json_offsets"], numbers)
        kept_doc_len, kept_ordinal = oa["doc_len"][rows], oa["doc_ordinal"][rows]
        kept_json_lengths = np.diff(oa["article_json_offsets"])[numbers]
        kept_published = oa["article_published_ms"][numbers]
        kept_counts = ends - starts
    else:
        kept_json = np.empty(0, np.uint8)
        kept_doc_len, kept_ordinal = np.empty(0), np.empty(0, np.int32)
        kept_json_lengths = kept_published = kept_counts = np.empty(0, np.int64)

    blocks = [*kept_blocks, *(_RowBlock(f.doc_nnz, f.term_ids, f.tf) for f in fresh)]
    postings = _TermMajor(blocks, n_terms)
    del blocks
    for block in kept_blocks:
        postings.add(block)
    del kept_blocks

    n_articles = len(kept) + len(fresh)
    json_bytes = kept_json.shape[0] + sum(len(f.article_json) for f in fresh)
    article_json = np.empty(json_bytes, np.uint8)
    article_json[: kept_json.shape[0]] = kept_json
    json_lengths = np.concatenate([kept_json_lengths, np.zeros(len(fresh), np.int64)])
    published = np.concatenate([kept_published, np.zeros(len(fresh), np.int64)])
    doc_counts = np.concatenate([kept_counts, np.zeros(len(fresh), np.int64)])
    doc_len_parts, ordinal_parts = [kept_doc_len], [kept_ordinal]
    byte, article, fresh_paths = kept_json.shape[0], len(kept), []
    for i in range(len(fresh)):
        f = fresh[i]
        fresh[i] = None  # type: ignore[call-overload]  # release it once copied
        postings.add(_RowBlock(f.doc_nnz, f.term_ids, f.tf))
        size = len(f.article_json)
        article_json[byte : byte + size] = np.frombuffer(f.article_json, np.uint8)
        json_lengths[article], published[article], doc_counts[article] = (
            size,
            f.published_ms,
            f.n_docs,
        )
        doc_len_parts.append(f.doc_len)
        ordinal_parts.append(np.arange(f.n_docs, dtype=np.int32))
        names.update(f.names)
        fresh_paths.append(f.path)
        byte, article = byte + size, article + 1

    assert postings.complete(), "every block's postings were placed"
    new_records = {p: replace(r, article=None) for p, r in records.items()}
    for number, path in enumerate([*kept, *fresh_paths]):
        new_records[path] = replace(records[path], article=number)
    terms = [""] * n_terms
    for term, i in vocab.items():
        terms[i] = term
    arrays = {
        "indptr": postings.indptr,
        "indices": postings.indices,
        "tf": postings.tf,
        "doc_len": np.concatenate(doc_len_parts).astype(np.float64),
        "doc_article": np.repeat(np.arange(n_articles, dtype=np.int32), doc_counts),
        "doc_ordinal": np.concatenate(ordinal_parts).astype(np.int32),
        "article_json": article_json,
        "article_json_offsets": _offsets(json_lengths),
        "article_doc_start": _offsets(doc_counts),
        "article_published_ms": published,
    }
    return IndexData(fingerprint, new_records, arrays, vocab, terms, names)


@dataclass(frozen=True)
class _RowBlock:
    """Consecutive passages in doc-major (CSR) form: passage i owns doc_nnz[i] postings."""

    doc_nnz: np.ndarray
    term_ids: np.ndarray
    tf: np.ndarray


class _TermMajor:
    """Scatters doc-major blocks, added in doc order, into term-major (CSC) arrays.

    The constructor sizes every term's slice from all the blocks' document frequencies;
    `add` then places one block's postings, so the output is the only full-size copy.
    """

    def __init__(self, blocks: list[_RowBlock], n_terms: int) -> None:
        df = np.zeros(n_terms, np.int64)
        for block in blocks:
            unique, counts = np.unique(block.term_ids, return_counts=True)
            df[unique] += counts
        self.indptr = _offsets(df)
        nnz = int(self.indptr[-1])
        self.indices = np.empty(nnz, np.int32)
        self.tf = np.empty(nnz, np.uint16)
        self._cursor = self.indptr[:-1].copy()
        self._next_doc = 0

    def complete(self) -> bool:
        return bool(np.array_equal(self._cursor, self.indptr[1:]))

    def add(self, block: _RowBlock) -> None:
        n_docs = block.doc_nnz.shape[0]
        docs = np.repeat(
            np.arange(self._next_doc, self._next_doc + n_docs, dtype=np.int32), block.doc_nnz
        )
        self._next_doc += n_docs
        if not block.term_ids.size:
            return
        order = np.argsort(block.term_ids, kind="stable")  # stable: docs stay ascending
        terms = block.term_ids[order]
        first = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]])
        sizes = np.diff(np.r_[first, terms.shape[0]])
        rank = np.arange(terms.shape[0]) - np.repeat(first, sizes)
        where = self._cursor[terms] + rank
        self.indices[where] = docs[order]
        self.tf[where] = block.tf[order]
        self._cursor[terms[first]] += sizes


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _gather_bytes(blob: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The byte ranges of the given rows of a blob, end to end."""
    if rows.size == 0:
        return np.empty(0, np.uint8)
    starts, ends = offsets[rows], offsets[rows + 1]
    # contiguous runs are the common case (whole articles kept in order): copy them in one go
    breaks = np.flatnonzero(starts[1:] != ends[:-1]) + 1
    run_starts = np.concatenate([[0], breaks])
    run_ends = np.concatenate([breaks, [rows.size]])
    return np.concatenate(
        [blob[starts[a] : ends[b - 1]] for a, b in zip(run_starts, run_ends, strict=True)]
    )


# --- saving and loading ------------------------------------------------------------------------


def save(index_dir: Path, data: IndexData) -> Path:
    """Write a new generation and make it current atomically; older generations are removed."""
    index_dir.mkdir(parents=True, exist_ok=True)
    gen = Path(tempfile.mkdtemp(prefix=f"gen-{time.strftime('%Y%m%d%H%M%S')}-", dir=index_dir))
    sizes = {}
    for name, array in data.arrays.items():
        if name == "weight":
            continue  # derived: written below from the arrays it depends on
        np.save(gen / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        sizes[name] = [str(array.dtype), list(array.shape)]
    # Posting weights depend on every passage's length (through avgdl), so each generation
    # stores its own, streamed to the file chunk by chunk rather than held in memory.
    a = data.arrays
    shape = (int(a["indices"].shape[0]),)
    with open(gen / "weight.npy", "wb") as fh:
        header = {"descr": np.dtype(np.float64).str, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(fh, header)
        for chunk in tf_weights(a["indices"], a["tf"], a["doc_len"]):
            fh.write(chunk.tobytes())
    sizes["weight"] = ["float64", list(shape)]
    (gen / "terms.txt").write_text("\n".join(data.terms), encoding="utf-8")
    meta = {
        "files": {p: asdict(r) for p, r in data.files.items()},
        "names": data.names,
    }
    (gen / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    manifest = {
        "format": FORMAT_VERSION,
        "fingerprint": data.fingerprint,
        "arrays": sizes,
        "n_terms": len(data.terms),
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


def load(index_dir: Path) -> IndexData | None:
    """The current generation, or None if there is none. Raises IndexCorrupt if it is broken."""
    pointer = index_dir / "CURRENT"
    if not pointer.exists():
        return None
    try:
        gen = index_dir / pointer.read_text(encoding="utf-8").strip()
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexCorrupt(f"index format {manifest.get('format')}, expected {FORMAT_VERSION}")
        for name, size_key in (("meta.json", "meta_bytes"), ("terms.txt", "terms_bytes")):
            if (gen / name).stat().st_size != manifest[size_key]:
                raise IndexCorrupt(f"{name} has the wrong size")
        arrays = {}
        for name in _ARRAYS:
            array = np.load(gen / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            dtype, shape = manifest["arrays"][name]
            if str(array.dtype) != dtype or list(array.shape) != shape:
                raise IndexCorrupt(f"{name}.npy does not match the manifest")
            arrays[name] = array
        meta = json.loads((gen / "meta.json").read_text(encoding="utf-8"))
        text = (gen / "terms.txt").read_text(encoding="utf-8")
        terms = text.split("\n") if text else []
    except IndexCorrupt:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorrupt(f"{type(exc).__name__}: {exc}") from exc
    if len(terms) != manifest["n_terms"]:
        raise IndexCorrupt("terms.txt does not match the manifest")
    _check_consistent(arrays, len(terms))
    files = {p: FileRecord(**r) for p, r in meta["files"].items()}
    vocab = dict(zip(terms, range(len(terms)), strict=True))
    return IndexData(
        manifest["fingerprint"],
        files,
        arrays,
        vocab,
        terms,
        meta["names"],
    )


def _check_consistent(a: dict[str, np.ndarray], n_terms: int) -> None:
    n_docs = a["doc_len"].shape[0]
    n_articles = a["article_published_ms"].shape[0]
    checks: Iterable[tuple[bool, str]] = (
        (a["indptr"].shape[0] == n_terms + 1, "indptr length"),
        (
            int(a["indptr"][-1]) == a["indices"].shape[0] == a["tf"].shape[0]
            and a["weight"].shape[0] == a["tf"].shape[0],
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
