"""The bot tests' fixtures, loaded with `pytest_plugins = ["bot_fixtures"]` in each
test_bot_* module (tests/conftest.py belongs to the retrieval tests)."""

from __future__ import annotations

import pytest
from bot_harness import RAIL, TYPHOON, running_bot, write_seeds
from fake_bot_api import FakeBotApi, telegram_html_problems

from retrieval import Library


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
    # Every text the bot tried to send must be valid Telegram HTML within 4,096 characters.
    assert server.problems == []
    for message in server.messages.values():
        if "html" in message:
            assert telegram_html_problems(message["html"]) == []


@pytest.fixture
async def bot(fake_api, bot_library):
    async with running_bot(fake_api, bot_library) as application:
        yield application
