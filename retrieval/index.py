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
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import sparse

from retrieval.analysis import Analyzer
from retrieval.articles import SeedFormatError, passages_of, read_seed_file
from retrieval.models import Article, Paragraph, Passage
from retrieval.scoring import Postings, build_postings, postings_from_csc

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
SEED_SUFFIXES = (".txt", ".md")
PARALLEL_FROM_FILES = 400  # below this, worker start-up costs more than it saves

_ARRAYS = (
    "indptr",
    "indices",
    "tf",
    "doc_len",
    "doc_article",
    "doc_ordinal",
    "doc_section",
    "doc_text",
    "doc_text_offsets",
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
    sections: list[str]
    names: frozenset[str]

    @property
    def postings(self) -> Postings:
        a = self.arrays
        return Postings(a["indptr"], a["indices"], a["tf"], a["doc_len"])

    @property
    def n_docs(self) -> int:
        return int(self.arrays["doc_len"].shape[0])

    @property
    def n_articles(self) -> int:
        return int(self.arrays["article_published_ms"].shape[0])

    def passage(self, doc: int) -> Passage:
        a = self.arrays
        lo, hi = a["doc_text_offsets"][doc], a["doc_text_offsets"][doc + 1]
        section = int(a["doc_section"][doc])
        article = self.article(int(a["doc_article"][doc]))
        ordinal = int(a["doc_ordinal"][doc])
        return Passage(
            id=f"{article.id}:{ordinal}",
            article_id=article.id,
            ordinal=ordinal,
            text=bytes(a["doc_text"][lo:hi]).decode("utf-8"),
            section=self.sections[section] if section >= 0 else None,
        )

    def article_of(self, doc: int) -> int:
        return int(self.arrays["doc_article"][doc])

    def article(self, number: int) -> Article:
        a = self.arrays
        lo, hi = a["article_json_offsets"][number], a["article_json_offsets"][number + 1]
        return article_from_json(bytes(a["article_json"][lo:hi]).decode("utf-8"))


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
    """One seed file, parsed and analysed (or the reason it could not be)."""

    path: str
    article: Article | None
    passages: tuple[Passage, ...]
    term_ids: np.ndarray  # local ids into the chunk's vocabulary, all passages end to end
    doc_lengths: np.ndarray
    names: frozenset[str]
    error: str | None = None


class _Vocabulary(dict[str, int]):
    """term → id, numbering new terms on first sight (a C-speed lookup for known ones)."""

    def __missing__(self, term: str) -> int:
        self[term] = number = len(self)
        return number


_worker_analyzer: Analyzer | None = None


def _init_worker(analyzer: Analyzer) -> None:
    global _worker_analyzer
    _worker_analyzer = analyzer


def _parse_chunk(
    seeds_dir: str, paths: list[str], analyzer: Analyzer | None = None
) -> tuple[list[str], list[ParsedFile]]:
    """Parse and analyse some files; term ids are local to the returned vocabulary."""
    analyzer = analyzer or _worker_analyzer
    assert analyzer is not None
    vocab = _Vocabulary()
    out = []
    for rel in paths:
        try:
            article = read_seed_file(Path(seeds_dir, rel), rel)
        except SeedFormatError as exc:
            out.append(
                ParsedFile(
                    rel,
                    None,
                    (),
                    np.empty(0, np.int32),
                    np.empty(0, np.int64),
                    frozenset(),
                    str(exc),
                )
            )
            continue
        passages = passages_of(article)
        names = analyzer.glossed_names(
            "\n".join([article.caption or "", *(p.text for p in article.paragraphs)])
        )
        ids: list[int] = []
        lengths = []
        for passage in passages:
            terms = analyzer.terms(passage.text, names)
            ids += map(vocab.__getitem__, terms)
            lengths.append(len(terms))
        out.append(
            ParsedFile(
                rel,
                article,
                tuple(passages),
                np.asarray(ids, np.int32),
                np.asarray(lengths, np.int64),
                frozenset(names),
            )
        )
    return list(vocab), out


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
    return [
        ParsedFile(
            f.path,
            f.article,
            f.passages,
            mapping[f.term_ids] if f.term_ids.size else f.term_ids,
            f.doc_lengths,
            f.names,
            f.error,
        )
        for f in files
    ]


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
            if f.article is None:
                return FileRecord(size, mtime, error=f.error)
            ms = int(f.article.published.timestamp() * 1000)
            return FileRecord(size, mtime, f.article.url, ms)
        return old_files[path]

    records = {p: record(p) for p in sorted(current)}
    winners = _newest_per_url(records)
    revived = sorted(p for p in winners if p not in parsed and records[p].article is None)
    for f in parse_files(seeds_dir, revived, analyzer, vocab, workers):
        parsed[f.path] = f

    kept = [p for p in sorted(winners, key=lambda p: records[p].article or 0) if p not in parsed]
    fresh = sorted(p for p in winners if p in parsed)
    return _assemble(analyzer.fingerprint, old, records, kept, [parsed[p] for p in fresh], vocab)


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
    """A new generation: the kept files' rows copied from `old`, then the fresh files'."""
    sections: list[str] = list(old.sections) if old else []
    section_ids = {s: i for i, s in enumerate(sections)}
    parts: dict[str, list[np.ndarray]] = {name: [] for name in _ARRAYS if name != "indptr"}
    names = set(old.names) if old else set()
    new_records = {
        p: FileRecord(r.size, r.mtime_ns, r.url, r.published_ms, r.error)
        for p, r in records.items()
    }
    n_articles = 0
    n_docs = 0
    matrices = []

    def add_article(path: str) -> None:
        nonlocal n_articles
        new_records[path] = FileRecord(**{**asdict(records[path]), "article": n_articles})
        n_articles += 1

    if old is not None and kept:
        oa = old.arrays
        numbers = np.array([records[p].article for p in kept], dtype=np.int64)
        starts, ends = oa["article_doc_start"][numbers], oa["article_doc_start"][numbers + 1]
        rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
        old_csr = sparse.csc_matrix(
            (oa["tf"], oa["indices"], oa["indptr"]), shape=(old.n_docs, len(old.terms))
        ).tocsr()
        matrices.append(old_csr[rows])
        parts["doc_len"].append(oa["doc_len"][rows])
        parts["doc_ordinal"].append(oa["doc_ordinal"][rows])
        parts["doc_section"].append(oa["doc_section"][rows])
        counts = ends - starts
        parts["doc_article"].append(np.repeat(np.arange(len(kept), dtype=np.int32), counts))
        parts["doc_text"].append(_gather_bytes(oa["doc_text"], oa["doc_text_offsets"], rows))
        parts["doc_text_lengths"] = [np.diff(oa["doc_text_offsets"])[rows]]
        parts["article_json"].append(
            _gather_bytes(oa["article_json"], oa["article_json_offsets"], numbers)
        )
        parts["article_json_lengths"] = [np.diff(oa["article_json_offsets"])[numbers]]
        parts["article_published_ms"].append(oa["article_published_ms"][numbers])
        parts["article_doc_counts"] = [counts]
        for path in kept:
            add_article(path)
        n_docs = int(rows.shape[0])

    if fresh:
        texts, jsons, doc_counts = [], [], []
        for f in fresh:
            assert f.article is not None
            texts.extend(p.text.encode("utf-8") for p in f.passages)
            jsons.append(article_to_json(f.article).encode("utf-8"))
            doc_counts.append(len(f.passages))
            parts["doc_ordinal"].append(np.array([p.ordinal for p in f.passages], np.int32))
            parts["doc_section"].append(
                np.array(
                    [
                        section_ids.setdefault(p.section, len(section_ids)) if p.section else -1
                        for p in f.passages
                    ],
                    np.int32,
                )
            )
            parts["doc_article"].append(np.full(len(f.passages), n_articles, np.int32))
            parts["article_published_ms"].append(
                np.array([int(f.article.published.timestamp() * 1000)], np.int64)
            )
            names.update(f.names)
            add_article(f.path)
        lengths = np.concatenate([f.doc_lengths for f in fresh])
        ids = np.concatenate([f.term_ids for f in fresh])
        new = build_postings(ids, lengths, len(vocab))
        matrices.append(
            sparse.csc_matrix((new.tf, new.indices, new.indptr), shape=(len(lengths), len(vocab)))
        )
        parts["doc_len"].append(lengths.astype(np.float64))
        parts["doc_text"].append(np.frombuffer(b"".join(texts), np.uint8))
        parts.setdefault("doc_text_lengths", []).append(np.array([len(t) for t in texts]))
        parts["article_json"].append(np.frombuffer(b"".join(jsons), np.uint8))
        parts.setdefault("article_json_lengths", []).append(np.array([len(j) for j in jsons]))
        parts.setdefault("article_doc_counts", []).append(np.array(doc_counts))
        n_docs += int(lengths.shape[0])
        sections = [s for s, _ in sorted(section_ids.items(), key=lambda kv: kv[1])]

    def joined(name: str, dtype: type) -> np.ndarray:
        pieces = parts.get(name) or []
        return np.concatenate(pieces).astype(dtype) if pieces else np.empty(0, dtype)

    matrices = [m.tocsr().astype(np.float32) for m in matrices]
    for i, m in enumerate(matrices):  # older generations know fewer terms
        m.resize((m.shape[0], len(vocab)))
        matrices[i] = m
    if matrices:
        postings = postings_from_csc(
            sparse.vstack(matrices, format="csc"), joined("doc_len", np.float64)
        )
    else:
        postings = build_postings(np.empty(0, np.int32), np.empty(0, np.int64), len(vocab))
    arrays = {
        "indptr": postings.indptr,
        "indices": postings.indices,
        "tf": postings.tf,
        "doc_len": postings.doc_len,
        "doc_article": joined("doc_article", np.int32),
        "doc_ordinal": joined("doc_ordinal", np.int32),
        "doc_section": joined("doc_section", np.int32),
        "doc_text": joined("doc_text", np.uint8),
        "doc_text_offsets": _offsets(joined("doc_text_lengths", np.int64)),
        "article_json": joined("article_json", np.uint8),
        "article_json_offsets": _offsets(joined("article_json_lengths", np.int64)),
        "article_doc_start": _offsets(joined("article_doc_counts", np.int64)),
        "article_published_ms": joined("article_published_ms", np.int64),
    }
    assert arrays["doc_len"].shape[0] == n_docs == arrays["doc_article"].shape[0]
    terms = [""] * len(vocab)
    for term, i in vocab.items():
        terms[i] = term
    return IndexData(fingerprint, new_records, arrays, vocab, terms, sections, frozenset(names))


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
        np.save(gen / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        sizes[name] = [str(array.dtype), list(array.shape)]
    (gen / "terms.txt").write_text("\n".join(data.terms), encoding="utf-8")
    meta = {
        "files": {p: asdict(r) for p, r in data.files.items()},
        "sections": data.sections,
        "names": sorted(data.names),
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
        meta["sections"],
        frozenset(meta["names"]),
    )


def _check_consistent(a: dict[str, np.ndarray], n_terms: int) -> None:
    n_docs = a["doc_len"].shape[0]
    n_articles = a["article_published_ms"].shape[0]
    checks: Iterable[tuple[bool, str]] = (
        (a["indptr"].shape[0] == n_terms + 1, "indptr length"),
        (int(a["indptr"][-1]) == a["indices"].shape[0] == a["tf"].shape[0], "postings length"),
        (a["doc_text_offsets"].shape[0] == n_docs + 1, "passage offsets"),
        (int(a["doc_text_offsets"][-1]) == a["doc_text"].shape[0], "passage text length"),
        (a["article_doc_start"].shape[0] == n_articles + 1, "article starts"),
        (int(a["article_doc_start"][-1]) == n_docs, "article passage count"),
        (int(a["article_json_offsets"][-1]) == a["article_json"].shape[0], "article text length"),
    )
    for ok, what in checks:
        if not ok:
            raise IndexCorrupt(f"inconsistent index: {what}")
