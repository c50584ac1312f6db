"""The bot merges its index's segments in another process, and answers all the while."""

from __future__ import annotations

from pathlib import Path

from retrieval import IndexKeeper
from retrieval.index import merging
from tests.support.harness import running_bot
from tests.support.seeds import write_articles, write_seeds


async def test_updates_past_the_merge_policy_are_merged_beside_answering(
    fake_api, tmp_path: Path
) -> None:
    seeds = write_seeds(tmp_path / "seeds")
    keeper = IndexKeeper.open(seeds, tmp_path / "index")
    library = keeper.library
    admin = fake_api.user(8801, "en")
    chat = fake_api.private_chat(admin)
    async with running_bot(fake_api, keeper, ADMIN_USER_IDS=str(admin["id"])):
        # each /reload after new files adds a small segment; the fourth of a tier is a merge
        for update in range(merging.MERGE_FACTOR):
            write_articles(seeds, 100 * update, 2)
            assert "changes loaded" in await fake_api.say(chat, admin, "/reload")
            assert "测试文章" in await fake_api.say(chat, admin, f"测试文章{100 * update}")
        await fake_api.wait_for(lambda: library.stats().segments < merging.MERGE_FACTOR, timeout=60)
        reply = await fake_api.say(chat, admin, "测试文章301")
    assert "测试文章301" in reply
    assert library.stats().articles == 1 + 2 * merging.MERGE_FACTOR
