"""The bot tests' fixtures: a small library, the fake Bot API server, the running bot."""

from __future__ import annotations

import pytest

from retrieval import Library
from tests.support.fake_bot_api import FakeBotApi, telegram_html_problems
from tests.support.harness import running_bot
from tests.support.seeds import RAIL, TYPHOON, write_seeds


@pytest.fixture(scope="session")
def bot_library(tmp_path_factory):
    """The seed article plus two small ones, in a real Library (built once per session)."""
    root = tmp_path_factory.mktemp("bot-library")
    seeds = write_seeds(root / "seeds", TYPHOON, RAIL)
    return Library.from_dir(seeds, index_dir=root / "index")


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
async def bot(fake_api, bot_library):
    async with running_bot(fake_api, bot_library) as application:
        yield application
