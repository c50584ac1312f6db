"""Damaged files: random single-bit flips in an index's files and its passage vectors.

Builds an index of the seed article and filler articles with every passage embedded, then,
for each trial, copies it, flips one random bit of one random file, opens it as the bot does
at start (IndexKeeper.open) and asks the same questions. Each trial ends one of four ways:
  rebuilt    the damage was found and the index rebuilt (with one warning)
  same       the flip changed nothing a search reads, or a damaged vector row was embedded
             again: every ranking equals the undamaged index's
  different  a ranking differs and nothing was rebuilt: damage served silently (a failure)
  no start   opening raised: the bot would not start (a failure)

usage: python -m benchmarks.bitflips [--trials 300] [--seed 1] [--articles 40]
Exit status 1 if any trial is `different` or `no start`.
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from retrieval import IndexKeeper, Meaning
from retrieval.index import store
from tests.support.seeds import SEED, write_articles

QUESTIONS = ["石破茂 特朗普 会谈", "日本 液化天然气", "关税", "防卫费", "美日同盟 中国"]


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


def _answers(keeper: IndexKeeper) -> list[list[tuple[str, float]]]:
    return [
        [(h.passage.id, round(h.score, 6)) for h in keeper.library.search(q, k=10).hits]
        for q in QUESTIONS
    ]


def _flip(index: Path, rng: random.Random) -> str:
    files = sorted(p for p in index.rglob("*") if p.is_file() and p.stat().st_size and
                   p.name != "LOCK")  # fmt: skip
    path = rng.choice(files)
    data = bytearray(path.read_bytes())
    at = rng.randrange(len(data) * 8)
    data[at // 8] ^= 1 << (at % 8)
    path.write_bytes(bytes(data))
    return path.relative_to(index).as_posix()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--articles", type=int, default=40, help="filler articles beside the seed")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    meaning = Meaning.load()
    warnings = _Warnings()
    logging.getLogger("retrieval").addHandler(warnings)
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bitflips-") as tmp:
        work = Path(tmp)
        seeds = work / "seeds"
        seeds.mkdir()
        shutil.copy(SEED, seeds / SEED.name)
        write_articles(seeds, 0, args.articles)
        keeper = IndexKeeper.open(seeds, work / "index", meaning=meaning)
        keeper.embed_ahead()
        keeper.close()
        expected = _answers(keeper)
        print(f"index: {keeper.library.stats().passages} passages, every one embedded")
        for trial in range(args.trials):
            damaged = work / f"trial-{trial}"
            shutil.copytree(work / "index", damaged)
            where = _flip(damaged, rng)
            before = store.current_state(damaged) if where != "CURRENT" else None
            warnings.seen.clear()
            try:
                opened = IndexKeeper.open(seeds, damaged, meaning=meaning)
                answers = _answers(opened)
                opened.close()
            except Exception as exc:
                outcome = "no start"
                failures.append(f"{where}: {type(exc).__name__}: {exc}")
            else:
                rebuilt = any("rebuilding" in w for w in warnings.seen) or (
                    before is not None and store.current_state(damaged) != before
                )
                if answers == expected:
                    outcome = "rebuilt" if rebuilt else "same"
                elif rebuilt:
                    outcome = "rebuilt"
                else:
                    outcome = "different"
                    failures.append(f"{where}: a ranking differs, nothing was rebuilt")
            outcomes[outcome] += 1
            shutil.rmtree(damaged)
    print(f"{args.trials} single-bit flips (seed {args.seed}):")
    for outcome in ("rebuilt", "same", "different", "no start"):
        print(f"  {outcome:<9} {outcomes[outcome]}")
    for failure in failures[:20]:
        print(f"  ! {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
