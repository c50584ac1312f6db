"""Load benchmark for the Telegram bot: N questions from M private chats, all at once.

The real Application (handlers, retrieval in threads, rendering, the HTTP client) answers
through the fake Bot API server from the tests. Reports answers per second and the handling
latency per question (from the moment getUpdates handed the update out to the moment the
answer reached the server). Asserts nothing about time; exits 1 unless every question was
answered exactly once.

    python -m benchmarks.bot_load                  # 500 questions, 50 chats, ./seeds
    python -m benchmarks.bot_load --flood-limit    # with Telegram's 30 msg/s enforced
    python -m benchmarks.bot_load --seeds DIR --questions 2000 --chats 100

Run from the repository root (it imports the fake server from tests.support).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bot.app import RetryingRateLimiter
from retrieval import Library
from tests.support import REPO
from tests.support.fake_bot_api import FakeBotApi
from tests.support.harness import running_bot

QUESTIONS = [
    "石破茂和特朗普会谈讨论了什么？",
    "美日联合声明对台海说了什么",
    "日本防卫预算会增加吗",
    "液化天然气 贸易逆差",
    "谢文生怎么看美日同盟",
    "长尾贤 哈德逊研究所",
    "特朗普对日本加征关税了吗？",
    "日本对美投资多少",
    "美日澳印多边合作",
    "半导体与人工智能合作",
    "石破茂什么时候访问白宫",
    "德地秀士认为会晤意义如何",
    "东中国海 南中国海",
    "日本汽车厂商在美国投资",
    "防卫支出占GDP的2%",
    "🙂🙂",  # no match: answered too
    "的了吗",
    "<b>特朗普</b> & 石破",
    "阿拉斯加 天然气",
    "安倍晋三的经验",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        library = Library.from_dir(args.seeds, index_dir=Path(tmp) / "index")
        stats = library.stats()
        print(
            f"library: {stats.articles} articles, {stats.passages} passages "
            f"(loaded in {time.perf_counter() - started:.1f} s)"
        )
        # Rates of 0 switch AIORateLimiter's flood limits off (retries stay on).
        limiter = None if args.flood_limit else RetryingRateLimiter(0, 1, 0, 60, max_retries=3)
        with FakeBotApi() as fake:
            async with running_bot(fake, library, rate_limiter=limiter):
                chats = []
                for i in range(args.chats):
                    user = fake.user(100_000 + i)
                    chats.append((user, fake.private_chat(user)))
                questions = []
                t0 = time.monotonic()
                for n in range(args.questions):
                    user, chat = chats[n % args.chats]
                    text = QUESTIONS[n % len(QUESTIONS)]
                    questions.append(fake.send_text(chat, user, text))
                # A cheap predicate: checking every question each poll would steal the CPU.
                await fake.wait_for(
                    lambda: len(fake.calls_to("sendMessage")) >= len(questions),
                    timeout=args.timeout,
                    message="all answers",
                )
                await fake.settle(0.5)
                elapsed = time.monotonic() - t0

        replies = {(q["chat"]["id"], q["message_id"]): fake.replies_to(q) for q in questions}
        counts = [len(r) for r in replies.values()]
        handed = fake.update_handed_out_at
        # Update ids were assigned in push order, one per question.
        latencies = []
        for update_id, q in enumerate(questions, start=1):
            reply = replies[(q["chat"]["id"], q["message_id"])]
            if reply and update_id in handed:
                latencies.append((reply[0].at - handed[update_id]) * 1000)

    mode = "Telegram flood limit (30 msg/s) enforced" if args.flood_limit else "no flood limit"
    print(f"{args.questions} questions from {args.chats} chats, {mode}")
    once, never = counts.count(1), counts.count(0)
    print(f"answered: {once} exactly once, {never} never, {len(counts) - once - never} twice+")
    print(f"throughput: {args.questions / elapsed:.0f} answers/s ({elapsed:.2f} s in all)")
    if latencies:
        print(
            f"handling latency: p50 {percentile(latencies, 50):.0f} ms, "
            f"p99 {percentile(latencies, 99):.0f} ms, max {max(latencies):.0f} ms, "
            f"mean {statistics.fmean(latencies):.0f} ms"
        )
    return 0 if all(c == 1 for c in counts) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=Path, default=REPO / "seeds")
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--flood-limit", action="store_true", help="keep AIORateLimiter's Telegram flood limits"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
