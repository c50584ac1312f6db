"""The index on disk: immutable segments, deletions beside them, one live state, one writer.

An index directory holds

    seg-<name>/          a segment: the articles of one batch of seed files (a cold build,
                         one update, or a merge of segments), never changed once written
    seg-<name>/del-<n>   which of its articles are deleted as of state n, and the live
                         document frequencies that follow (written when deletions change)
    state-<n>.json       the live set: its segments, each with its deletions, and every
                         seed file's record (size, date, which segment holds its article)
    CURRENT              the name of the state in force, replaced by an atomic rename
    LOCK                 held by the one process that may write (flock)
    (vectors)            the passages' vectors: retrieval.index.vectors names and writes them;
                         a cache, not the index

A change writes its new segment and deletion files in full, then a new state, then swaps
CURRENT, so a process killed at any moment leaves the previous state in force, and what it
was writing is removed by the next writer. Every file is verified before it is read, as
Lucene's segment footers are: CURRENT holds the state file's checksum, the state each
segment's manifest's and deletions', the manifest each file's size and checksum. Whatever
fails a check on load (a flipped bit included) raises IndexCorrupt (the keeper then
rebuilds), never serves.

The directory is the index's alone, and the index touches nothing else in it: a directory
that holds anything but the names above (`OWN_NAME`) is refused before anything is written
(`check_index_dir`), and clean-up removes only those names, never another file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path

import numpy as np

from retrieval.index import vectors
from retrieval.models import Article, Paragraph, Passage

log = logging.getLogger(__name__)

FORMAT_VERSION = 12  # bump when the stored arrays or what becomes a passage change
# A segment's arrays. Two fields, each term-major postings with its documents' lengths:
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
    "article_key",  # the article id as a number: ties break by it, whatever the build history
    "name_indptr",  # glossed name pair i is glossed by articles
    "name_articles",  # name_articles[name_indptr[i] : name_indptr[i + 1]]
)
FIELDS = ("passage", "article")
_NAME = re.compile(r"[0-9a-z-]{1,64}\Z")
_SMALL_FILE_BYTES = 1 << 20  # CURRENT and a manifest are far smaller
_STATE_BYTES = 1 << 30  # a state file: about 150 bytes a seed file


# Every name the index writes into its directory, earlier formats' included (gen-*: format 10
# and before), and the temporary names of writers: nothing else there is ever removed.
OWN_NAME = re.compile(
    r"(LOCK|CURRENT|\.CURRENT\.\d+|state-\d{8}\.json|seg-[0-9a-z-]{1,64}|gen-[0-9A-Za-z_-]+"
    rf"|merging-\d+-[0-9a-z-]{{1,64}})\Z|{vectors.OLD_CACHE.pattern}"
)


class IndexDirUnusable(ValueError):
    """The index directory is a file, or a directory that holds other things than an index."""


def check_index_dir(index_dir: Path) -> None:
    """Raise IndexDirUnusable unless `index_dir` is missing, empty, or holds only what an
    index writes: an index never writes, and so never cleans up, in someone else's folder
    (INDEX_DIR=. beside seeds/ and .git would otherwise lose them)."""
    if not index_dir.exists():
        return
    if not index_dir.is_dir():
        raise IndexDirUnusable(f"index directory {index_dir} is a file, not a directory")
    try:
        others = sorted(p.name for p in index_dir.iterdir() if not OWN_NAME.match(p.name))
    except OSError as exc:
        raise IndexDirUnusable(f"index directory {index_dir} cannot be read ({exc})") from exc
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise IndexDirUnusable(
            f"index directory {index_dir} holds other files ({shown}); "
            "give the index a directory of its own, or an empty one"
        )


class IndexCorrupt(Exception):
    """A saved index is incomplete or inconsistent."""


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
    segment: str | None = None  # the segment holding its article; None: skipped or shadowed
    article_number: int | None = None  # the article's number in that segment


@dataclass(frozen=True)
class SegmentDraft:
    """A segment as built, before it is written."""

    arrays: Mapping[str, np.ndarray]  # the ARRAYS
    terms: list[str]  # the segment's own vocabulary: term id → term
    # the [Chinese name, English gloss] pairs its articles gloss; pair i is glossed by the
    # articles arrays["name_articles"][arrays["name_indptr"][i] : arrays["name_indptr"][i + 1]]
    names: list[list[str]]

    @property
    def n_passages(self) -> int:
        return int(self.arrays["passage_len"].shape[0])

    @property
    def n_articles(self) -> int:
        return int(self.arrays["article_len"].shape[0])


@dataclass(frozen=True)
class Segment:
    """A segment as served: its arrays memory-mapped, its deletions as of one state."""

    name: str
    draft: SegmentDraft
    deleted: np.ndarray  # bool per article
    # live document frequency of each of the segment's terms, per field
    live_df: Mapping[str, np.ndarray]
    deletions: str | None = None  # the file its deletions are saved in; None: none or unsaved
    # checksums (digest) of its manifest and its deletions file, for the state that names it
    manifest_digest: str = ""
    deletions_digest: str | None = None

    @property
    def arrays(self) -> Mapping[str, np.ndarray]:
        return self.draft.arrays

    @property
    def n_articles(self) -> int:
        return self.draft.n_articles

    @property
    def n_passages(self) -> int:
        return self.draft.n_passages

    @cached_property
    def live_articles(self) -> np.ndarray:
        return ~self.deleted

    @cached_property
    def live_passages(self) -> np.ndarray:
        return self.live_articles[self.arrays["passage_article"]]

    @cached_property
    def vocab(self) -> dict[str, int]:
        return dict(zip(self.draft.terms, range(len(self.draft.terms)), strict=True))

    def article(self, number: int) -> tuple[Article, list[Passage]]:
        """An article and its passages, as indexed."""
        a = self.arrays
        lo, hi = a["article_json_offsets"][number], a["article_json_offsets"][number + 1]
        return decode_article(a["article_json"][lo:hi].tobytes())

    @classmethod
    def in_memory(cls, name: str, draft: SegmentDraft) -> Segment:
        """A segment that could not be saved, served from memory."""
        deleted = np.zeros(draft.n_articles, bool)
        return cls(name, draft, deleted, _live_df(draft, deleted))

    def with_deleted(self, articles: Iterable[int]) -> Segment:
        """This segment with these articles deleted too (live frequencies follow; unsaved)."""
        deleted = self.deleted.copy()
        deleted[np.fromiter(articles, np.int64)] = True
        live_df = _live_df(self.draft, deleted)
        return replace(
            self, deleted=deleted, live_df=live_df, deletions=None, deletions_digest=None
        )


@dataclass(frozen=True)
class State:
    """The live set: which segments, and every seed file's record."""

    fingerprint: str
    generation: int
    segments: tuple[Segment, ...]
    files: Mapping[str, FileRecord] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"state-{self.generation:08d}.json"

    @property
    def n_articles(self) -> int:
        return sum(int(s.live_articles.sum()) for s in self.segments)

    @property
    def n_passages(self) -> int:
        return sum(int(s.live_passages.sum()) for s in self.segments)

    @property
    def newest_ms(self) -> int | None:
        """The publication time of the newest live article, epoch milliseconds."""
        dates = [r.published_ms for r in self.files.values() if r.segment is not None]
        return max(dates, default=None)


# --- articles as stored ------------------------------------------------------------------------


def encode_article(article: Article, passages: list[Passage]) -> bytes:
    """An article and its passages as stored: compressed JSON (article texts are half an
    index's size). The passages are stored, not derived again, so that answering never
    parses or splits text."""
    data = {
        "id": article.id,
        "title": article.title,
        "url": article.url,
        "published": article.published.isoformat(),
        "paragraphs": [[p.text, p.section] for p in article.paragraphs],
        "captions": article.captions,
        "dateline": article.dateline,
        "source": article.source,
        "passages": [[p.text, p.section] for p in passages],
    }
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
    killed writer never leaves the directory locked. Raises IndexDirUnusable for a directory
    that is not the index's own (check_index_dir)."""
    check_index_dir(index_dir)
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


# --- writing -----------------------------------------------------------------------------------


def without_empty(state: State) -> State:
    """The state without segments that have no live article left."""
    return replace(state, segments=tuple(s for s in state.segments if not s.deleted.all()))


def new_segment_name() -> str:
    return f"{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(4)}"


def save_segment(
    index_dir: Path, name: str, draft: SegmentDraft, folder: Path | None = None
) -> Segment:
    """Write a segment in full (synced) into `folder` (default: its place, seg-<name>);
    nothing refers to it until a state that names it is committed."""
    folder = folder or index_dir / f"seg-{name}"
    folder.mkdir(parents=True)
    sizes = {}
    for array_name in ARRAYS:
        array = np.ascontiguousarray(draft.arrays[array_name])
        np.save(folder / f"{array_name}.npy", array, allow_pickle=False)
        sizes[array_name] = [str(array.dtype), list(array.shape)]
    (folder / "terms.txt").write_text("\n".join(draft.terms), encoding="utf-8")
    (folder / "names.json").write_text(json.dumps(draft.names, ensure_ascii=False), "utf-8")
    files = [f"{a}.npy" for a in ARRAYS] + ["terms.txt", "names.json"]
    manifest = {
        "format": FORMAT_VERSION,
        "arrays": sizes,
        "n_terms": len(draft.terms),
        "files": {f: [(folder / f).stat().st_size, _digest_of(folder / f)] for f in files},
    }
    # the manifest goes last: a segment without one was never finished
    payload = json.dumps(manifest).encode()
    _write_synced(folder / "manifest.json", payload)
    for path in folder.iterdir():
        _fsync(path)
    _fsync(folder)
    # its files were hashed from the disk a moment ago: read back without hashing them again
    return _read_segment(folder, name, _digest(payload), None, None, hashed=True)


def commit(index_dir: Path, state: State) -> State:
    """Make `state` the one in force: write its unsaved deletions, the state file, then swap
    CURRENT. Call with the writer_lock held, its segments saved. Then everything the state
    does not refer to is removed. Returns the state as saved."""
    segments = []
    for segment in state.segments:
        if segment.deletions is None and segment.deleted.any():
            deletions = f"del-{state.generation:08d}.npz"
            digest = _save_deletions(index_dir / f"seg-{segment.name}" / deletions, segment)
            segment = replace(segment, deletions=deletions, deletions_digest=digest)
        segments.append(segment)
    state = replace(state, segments=tuple(segments))
    body = {
        "format": FORMAT_VERSION,
        "fingerprint": state.fingerprint,
        "generation": state.generation,
        "segments": [
            {
                "name": s.name,
                "manifest": s.manifest_digest,
                "deletions": s.deletions,
                "deletions_digest": s.deletions_digest,
            }
            for s in segments
        ],
        "files": {p: list(asdict(r).values()) for p, r in state.files.items()},
    }
    payload = json.dumps(body, ensure_ascii=False).encode()
    _write_synced(index_dir / state.name, payload)
    pointer = index_dir / f".CURRENT.{os.getpid()}"
    _write_synced(pointer, f"{state.name} {_digest(payload)}".encode())
    os.replace(pointer, index_dir / "CURRENT")
    _fsync(index_dir)
    _collect_garbage(index_dir, state)
    return state


def _save_deletions(path: Path, segment: Segment) -> str:
    """Write a segment's deletions; their checksum."""
    with open(path, "wb") as fh:
        np.savez(
            fh,
            deleted=segment.deleted,
            passage_df=segment.live_df["passage"],
            article_df=segment.live_df["article"],
        )
        fh.flush()
        os.fsync(fh.fileno())
    return _digest_of(path)


def _collect_garbage(index_dir: Path, state: State) -> None:
    """Remove what the state in force does not refer to: replaced states, merged-away or
    half-written segments, superseded deletions, temporary files of killed writers. A merge
    under way writes outside the lock, into `merging-<pid>-…`, left alone while it lives.
    Only names the index writes (OWN_NAME) are ever removed."""
    live = {f"seg-{s.name}": s.deletions for s in state.segments}
    for path in index_dir.iterdir():
        if path.name in ("LOCK", "CURRENT", state.name):
            continue
        if not OWN_NAME.match(path.name):
            continue  # not the index's: never touched
        if path.name in live:
            for inner in path.iterdir():
                if inner.name.startswith("del-") and inner.name != live[path.name]:
                    inner.unlink(missing_ok=True)
                elif (made := vectors.TEMPORARY.match(inner.name)) and not _process_alive(
                    made.group(1)
                ):
                    inner.unlink(missing_ok=True)  # a killed process's half-made vectors
        elif path.name.startswith("merging-") and _process_alive(path.name.split("-")[1]):
            continue  # a merge under way
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _process_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


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


# --- reading -----------------------------------------------------------------------------------


def current_state(index_dir: Path) -> str | None:
    """The name of the state CURRENT points at, None when there is none yet."""
    pointer = _pointer(index_dir)
    return None if pointer is None else pointer[0]


def _pointer(index_dir: Path) -> tuple[str, str] | None:
    """(the state in force, its checksum) as CURRENT says; None when there is none yet."""
    try:
        with open(index_dir / "CURRENT", "rb") as fh:
            text = fh.read(_SMALL_FILE_BYTES).decode("utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorrupt(f"CURRENT: {exc}") from exc
    name, _, digest = text.partition(" ")
    return name, digest


def load(index_dir: Path, reuse: Iterable[Segment] = ()) -> State | None:
    """The state in force, or None if there is none. Raises IndexCorrupt if it is broken.

    Needs no lock: a writer swaps CURRENT atomically and only then removes what the old
    state referred to, so a reader that lost that race finds CURRENT changed and reads the
    new one. Segments in `reuse` whose deletions are unchanged are not read again."""
    for _ in range(3):
        pointer = _pointer(index_dir)
        if pointer is None:
            return None
        name, digest = pointer
        try:
            return _read_state(index_dir, name, digest, {s.name: s for s in reuse})
        except Exception as exc:
            # every malformed input lands here: missing keys, wrong types, bad arrays, and
            # whatever a parser raises on bytes that passed no check (numpy's header parser
            # raises SyntaxError, tokenize.TokenError…)
            if current_state(index_dir) == name:
                if isinstance(exc, IndexCorrupt):
                    raise
                raise IndexCorrupt(f"{type(exc).__name__}: {exc}") from exc
    raise IndexCorrupt("CURRENT keeps changing")


def _read_state(index_dir: Path, name: str, digest: str, reuse: Mapping[str, Segment]) -> State:
    if not re.fullmatch(r"state-\d{8}\.json", name):
        if name.startswith("gen-"):  # format 10 and before: one generation, no segments
            raise IndexCorrupt(
                f"index format 10 or older (before segments), expected {FORMAT_VERSION}"
            )
        raise IndexCorrupt(f"CURRENT names {name[:80]!r}, not a state")
    body = _json_object(index_dir / name, digest, _STATE_BYTES)
    if body.get("format") != FORMAT_VERSION:
        raise IndexCorrupt(f"index format {body.get('format')}, expected {FORMAT_VERSION}")
    segments = []
    for ref in body["segments"]:
        segment_name, deletions = str(ref["name"]), ref["deletions"]
        if not _NAME.match(segment_name) or not (
            deletions is None or re.fullmatch(r"del-\d{8}\.npz", str(deletions))
        ):
            raise IndexCorrupt(f"{name}: a bad segment reference {ref!r}")
        manifest, deletions_digest = str(ref["manifest"]), ref["deletions_digest"]
        known = reuse.get(segment_name)
        if known is not None and (known.deletions, known.manifest_digest) == (deletions, manifest):
            segments.append(known)  # segments are immutable, and so is each deletions file
        else:
            folder = index_dir / f"seg-{segment_name}"
            segments.append(
                _read_segment(folder, segment_name, manifest, deletions, deletions_digest, known)
            )
    files = {str(path): FileRecord(*fields) for path, fields in body["files"].items()}
    state = State(str(body["fingerprint"]), int(body["generation"]), tuple(segments), files)
    _check_records(state)
    return state


def _read_segment(
    folder: Path,
    name: str,
    manifest_digest: str,
    deletions: str | None,
    deletions_digest: str | None,
    known: Segment | None = None,
    *,
    hashed: bool = False,
) -> Segment:
    """A segment as stored in `folder`, every file checked against its manifest (whose
    checksum the state gives) unless `hashed` (just written and hashed by save_segment)."""
    if known is not None and known.manifest_digest == manifest_digest:
        draft = known.draft
    else:
        manifest = _json_object(folder / "manifest.json", manifest_digest, _SMALL_FILE_BYTES)
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexCorrupt(f"segment {name}: format {manifest.get('format')}")
        for file_name, (size, digest) in manifest["files"].items():
            path = folder / str(file_name)
            if path.stat().st_size != size or (not hashed and _digest_of(path) != digest):
                raise IndexCorrupt(f"segment {name}: {file_name} is damaged (checksum)")
        arrays = {}
        for array_name in ARRAYS:
            array = np.load(folder / f"{array_name}.npy", mmap_mode="r", allow_pickle=False)
            dtype, shape = manifest["arrays"][array_name]
            if str(array.dtype) != dtype or list(array.shape) != shape:
                raise IndexCorrupt(f"segment {name}: {array_name}.npy does not match")
            # a plain view: slicing a memmap object costs microseconds, a query slices
            # hundreds of times
            arrays[array_name] = np.asarray(array)
        text = (folder / "terms.txt").read_text(encoding="utf-8")
        terms = text.split("\n") if text else []
        if len(terms) != manifest["n_terms"]:
            raise IndexCorrupt(f"segment {name}: terms.txt does not match")
        names = json.loads((folder / "names.json").read_text(encoding="utf-8"))
        draft = SegmentDraft(arrays, terms, names)
        _check_consistent(name, draft)
    if deletions is None:
        deleted = np.zeros(draft.n_articles, bool)
        live_df = {f: np.diff(draft.arrays[f"{f}_indptr"]) for f in FIELDS}
    else:
        if _digest_of(folder / deletions) != deletions_digest:
            raise IndexCorrupt(f"segment {name}: {deletions} is damaged (checksum)")
        with np.load(folder / deletions, allow_pickle=False) as saved:
            deleted = saved["deleted"]
            live_df = {"passage": saved["passage_df"], "article": saved["article_df"]}
        if (
            deleted.shape != (draft.n_articles,)
            or deleted.dtype != bool
            or any(live_df[f].shape != (len(draft.terms),) for f in FIELDS)
        ):
            raise IndexCorrupt(f"segment {name}: {deletions} does not match")
    return Segment(name, draft, deleted, live_df, deletions, manifest_digest, deletions_digest)


def _live_df(draft: SegmentDraft, deleted: np.ndarray) -> dict[str, np.ndarray]:
    """Each term's document frequency among the live documents of each field."""
    a = draft.arrays
    live = {"article": ~deleted, "passage": (~deleted)[a["passage_article"]]}
    out = {}
    for f in FIELDS:
        indptr = a[f"{f}_indptr"]
        counted = np.concatenate([[0], np.cumsum(live[f][a[f"{f}_indices"]], dtype=np.int64)])
        out[f] = counted[indptr[1:]] - counted[indptr[:-1]]
    return out


def _json_object(path: Path, digest: str, at_most: int) -> dict:
    """A JSON object from a file of at most `at_most` bytes whose checksum is `digest`."""
    if path.stat().st_size > at_most:
        raise IndexCorrupt(f"{path.name} is larger than an index ever writes")
    payload = path.read_bytes()
    if _digest(payload) != digest:
        raise IndexCorrupt(f"{path.name} is damaged (checksum)")
    value = json.loads(payload.decode("utf-8"))
    if not isinstance(value, dict):
        raise IndexCorrupt(f"{path.name} is not a JSON object")
    return value


def _digest(payload: bytes) -> str:
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def _digest_of(path: Path) -> str:
    """A file's checksum, read in blocks (the arrays of a large segment are hundreds of MB)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _check_consistent(name: str, draft: SegmentDraft) -> None:
    a = draft.arrays
    n_terms, n_passages, n_articles = len(draft.terms), draft.n_passages, draft.n_articles
    checks = [(a[f"{f}_indptr"].shape[0] == n_terms + 1, f"{f} term count") for f in FIELDS]
    checks += [
        (
            int(a[f"{f}_indptr"][-1]) == a[f"{f}_indices"].shape[0] == a[f"{f}_tf"].shape[0],
            f"{f} postings length",
        )
        for f in FIELDS
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
            == a["article_key"].shape[0] + 1
            == n_articles + 1,
            "article arrays",
        ),
        (a["name_indptr"].shape[0] == len(draft.names) + 1, "names"),
        (int(a["name_indptr"][-1]) == a["name_articles"].shape[0], "name articles"),
        (bool(np.all(a["name_articles"] < n_articles)), "name articles range"),
        (int(a["article_passage_start"][-1]) == n_passages, "article passage count"),
        (int(a["article_json_offsets"][-1]) == a["article_json"].shape[0], "article text length"),
    ]
    for ok, what in checks:
        if not ok:
            raise IndexCorrupt(f"segment {name}: inconsistent {what}")


def _check_records(state: State) -> None:
    """Every live article has exactly one file record, and every record points at one."""
    segments = {s.name: s for s in state.segments}
    claimed = {name: np.zeros(s.n_articles, bool) for name, s in segments.items()}
    for path, record in state.files.items():
        if record.segment is None:
            continue
        segment = segments.get(record.segment)
        number = record.article_number
        if segment is None or number is None or not 0 <= number < segment.n_articles:
            raise IndexCorrupt(f"{path}: its record names no article")
        if segment.deleted[record.article_number] or claimed[record.segment][record.article_number]:
            raise IndexCorrupt(f"{path}: its record names a deleted or shared article")
        claimed[record.segment][record.article_number] = True
    for name, segment in segments.items():
        if not np.array_equal(claimed[name], segment.live_articles):
            raise IndexCorrupt(f"segment {name}: a live article without its file record")
