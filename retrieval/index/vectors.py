"""The passages' vectors beside the index: the one module that names their files, writes them
and reads them back.

They are the meaning model's cache (retrieval.question.meaning), saved so that after a restart
no question waits for passages to be embedded again. Each row is keyed by a hash of the text
embedded, and the file carries the model's name: a file of another model or format, or a
damaged one, is logged and left unused. It is only a cache: losing it costs time, not answers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import zipfile
from pathlib import Path

import numpy as np

from retrieval.question.meaning import KEY_BYTES, Meaning

FILE = "meaning.npz"
# A save writes meaning-<pid>.tmp, then renames it: the index's clean-up leaves a live saver's
# file alone and removes a killed one's.
TEMPORARY = re.compile(r"meaning-(\d+)\.tmp\Z")
FORMAT = 1  # of the file `save` writes; another is not read

log = logging.getLogger(__name__)
_one_save_at_a_time = threading.Lock()  # saves would share the temporary file


def save(meaning: Meaning, index_dir: Path) -> int:
    """Write the cached passages' vectors beside the index, replacing the file in one step;
    how many (0, and nothing written, when none was embedded since the last save or restore,
    or when the directory cannot be written: that is logged, and costs only time)."""
    with _one_save_at_a_time:
        items = meaning.unsaved()
        if not items:
            return 0
        temporary = index_dir / f"meaning-{os.getpid()}.tmp"
        keys = np.frombuffer(b"".join(key for key, _ in items), dtype=np.uint8)
        try:
            with open(temporary, "wb") as fh:
                np.savez(
                    fh,
                    format=np.array(FORMAT),
                    model=np.array(meaning.name),
                    keys=keys.reshape(len(items), KEY_BYTES),
                    rows=np.stack([row for _, row in items]),
                )
            os.replace(temporary, index_dir / FILE)
        except OSError as exc:
            with contextlib.suppress(OSError):  # not there, or no directory to remove it from
                temporary.unlink()
            meaning.not_saved(items)  # the next save tries again
            log.warning("cannot save the passages' vectors in %s (%s)", index_dir, exc)
            return 0
        return len(items)


def restore(meaning: Meaning, index_dir: Path) -> int:
    """Add the vectors `save` wrote beside the index to the model's cache, behind those already
    in it; how many were added."""
    path = index_dir / FILE
    try:
        with np.load(path, allow_pickle=False) as saved:
            if int(saved["format"]) != FORMAT or str(saved["model"]) != meaning.name:
                log.info("%s holds another model's vectors: not used", path)
                return 0
            keys, rows = saved["keys"], saved["rows"]
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("saved vectors in %s are unreadable (%s): not used", path, exc)
        return 0
    if (
        keys.dtype != np.uint8
        or keys.ndim != 2
        or keys.shape[1] != KEY_BYTES
        or rows.dtype != np.float16
        or rows.ndim != 2
        or len(rows) != len(keys)
    ):
        log.warning("saved vectors in %s are not in the expected shape: not used", path)
        return 0
    return meaning.remember(keys, rows)
