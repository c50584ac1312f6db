"""What the tests and the benchmarks share: seed files (`seeds`), a loopback HTTP server
(`http`), the fake Telegram Bot API server (`fake_bot_api`), the running bot (`harness`) and a
loopback SOCKS5 proxy (`socks`).

Imported as `from tests.support.seeds import …` from the repository root: pytest puts the root
on sys.path (pyproject's `pythonpath`), and `python -m benchmarks.NAME` runs from it.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"  # the VOA corpus and the benchmark scripts, when present
FEEDS = REPO / "tests" / "fixtures" / "feeds"
