"""The bot tests' fixtures: a small library, the fake Bot API server, the running bot."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval import IndexKeeper, Library
from retrieval.question.meaning import Meaning
from tests.support.fake_bot_api import FakeBotApi, telegram_html_problems
from tests.support.harness import running_bot
from tests.support.seeds import RAIL, TYPHOON, write_seeds


@pytest.fixture(scope="session")
def bot_keeper(tmp_path_factory) -> IndexKeeper:
    """The seed article plus two small ones, in a real index with the model of meaning, as
    the bot is deployed (built once per session; its few passages are embedded once)."""
    root = tmp_path_factory.mktemp("bot-library")
    seeds = write_seeds(root / "seeds", TYPHOON, RAIL)
    return IndexKeeper.open(seeds, index_dir=root / "index", meaning=Meaning.load())


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """A seeds directory of its own: the seed article and the typhoon (new files go here)."""
    return write_seeds(tmp_path / "seeds", TYPHOON)


@pytest.fixture
def keeper(seeds: Path, tmp_path: Path) -> IndexKeeper:
    """The index of `seeds`, by terms alone (no model of meaning): quick to bring up to date."""
    return IndexKeeper.open(seeds, index_dir=tmp_path / "index")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where a test's subscriptions database goes."""
    return tmp_path / "subscriptions.sqlite3"


@pytest.fixture(scope="session")
def bot_library(bot_keeper: IndexKeeper) -> Library:
    return bot_keeper.library


@pytest.fixture
def fake_api():
    with FakeBotApi() as server:
        yield server
    # Nothing the bot sent may be what Telegram refuses: invalid HTML, over 4,096 characters,
    # a second answer to one callback query.
    assert server.problems == []
    for message in server.messages.values():
        if "html" in message:
            assert telegram_html_problems(message["html"]) == []


@pytest.fixture
async def bot(fake_api, bot_keeper):
    async with running_bot(fake_api, bot_keeper) as application:
        yield application
