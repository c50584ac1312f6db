"""Load benchmark for the Telegram bot: N questions from M private chats, all at once; or a
noisy neighbour: one user floods while others ask.

The real Application (handlers, retrieval in threads, rendering, the HTTP client) answers
through the fake Bot API server from the tests. Reports answers per second and the handling
latency per question (from the moment getUpdates handed the update out to the moment the
answer reached the server). Asserts nothing about time; exits 1 unless every question was
answered exactly once.

With --noisy-neighbour, one user sends --flood questions (in bursts of 100 every 0.5 s) while
--others users ask --questions-each questions each, at random moments over the same span,
with QUESTIONS_PER_MINUTE at its default (or --questions-per-minute). Reports the other
users' answer time, from the moment a question was sent to the moment its answer reached the
server (so getUpdates batches count), and what became of the flood; exits 1 unless every
other user's question was answered exactly once.

    python -m benchmarks.bot_load                  # 500 questions, 50 chats, ./seeds
    python -m benchmarks.bot_load --flood-limit    # with Telegram's 30 msg/s enforced
    python -m benchmarks.bot_load --seeds DIR --questions 2000 --chats 100
    python -m benchmarks.bot_load --noisy-neighbour --flood-limit

Run from the repository root (it imports the fake server from tests.support).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import reporter, workers
from bot.app import RetryingRateLimiter
from bot.i18n import pick_language, t
from bot.settings import Settings
from retrieval import IndexKeeper
from retrieval.question.meaning import Meaning
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


def _limiter(args: argparse.Namespace) -> RetryingRateLimiter | None:
    """None: the bot's own (Telegram's flood limits); else one with the rates switched off."""
    # Rates of 0 switch AIORateLimiter's flood limits off (retries stay on).
    return None if args.flood_limit else RetryingRateLimiter(0, 1, 0, 60, max_retries=3)


async def noisy_neighbour(args: argparse.Namespace) -> int:
    """One user floods; how long do the others wait for their answers? Once on the bot's
    first start, when the passages' vectors are still to be made, and once after a restart,
    when they were saved beside the index."""
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for start in ("first start", "restart"):
            keeper = IndexKeeper.open(
                args.seeds,
                index_dir=Path(tmp) / "index",
                workers=workers(args.progress),
                meaning=Meaning.load(),
            )
            failed |= await _flood(args, keeper, start)
    return failed


async def _flood(args: argparse.Namespace, keeper: IndexKeeper, start: str) -> int:
    rng = random.Random(12)
    with FakeBotApi() as fake:
        rate = str(args.questions_per_minute)
        async with running_bot(
            fake, keeper, rate_limiter=_limiter(args), QUESTIONS_PER_MINUTE=rate
        ):
            flooder = fake.user(200_000)
            flood_chat = fake.private_chat(flooder)
            others = [fake.user(300_000 + i) for i in range(args.others)]
            bursts = -(-args.flood // 100)
            span = bursts * 0.5
            # When each other user asks, in seconds from the start of the flood.
            plan = sorted(
                (rng.uniform(0, span), i)
                for i in range(args.others)
                for _ in range(args.questions_each)
            )
            flood: list[dict] = []
            asked: list[tuple[dict, float]] = []  # (question, when it was sent)

            async def others_ask(until: float) -> None:
                while plan and plan[0][0] <= until:
                    offset, i = plan.pop(0)
                    await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
                    user = others[i]
                    message = fake.send_text(fake.private_chat(user), user, rng.choice(QUESTIONS))
                    asked.append((message, time.monotonic()))

            t0 = time.monotonic()
            for burst in range(bursts):
                await others_ask(burst * 0.5)
                for _ in range(min(100, args.flood - len(flood))):
                    flood.append(fake.send_text(flood_chat, flooder, rng.choice(QUESTIONS)))
            await others_ask(span)
            await fake.wait_for(
                lambda: all(fake.replies_to(q) for q, _ in asked),
                timeout=args.timeout,
                message="the other users' answers",
            )
            await fake.settle(1.0)

    counts = [len(fake.replies_to(q)) for q, _ in asked]
    waits = [(fake.replies_to(q)[0].at - sent) * 1000 for q, sent in asked if fake.replies_to(q)]
    replies = [c.params["text"] for q in flood for c in fake.replies_to(q)]
    notice = t(pick_language(flooder["language_code"]), "rate_limited", rate=rate)
    notices = replies.count(notice)
    mode = "Telegram flood limit (30 msg/s) enforced" if args.flood_limit else "no flood limit"
    print(
        f"noisy neighbour, {start}, {mode}, QUESTIONS_PER_MINUTE={rate}: one user sent "
        f"{len(flood)} questions in bursts of 100 over {span:.1f} s; {args.others} other "
        f"users asked {len(asked)} questions at random moments meanwhile"
    )
    dropped = sum(not fake.replies_to(q) for q in flood)
    print(f"the flooder: {len(replies) - notices} answers, {notices} notice(s), {dropped} dropped")
    once = counts.count(1)
    print(f"other users: {once} of {len(counts)} questions answered exactly once")
    if waits:
        print(
            f"other users' answer time (sent → answer): p50 {percentile(waits, 50):.0f} ms, "
            f"p99 {percentile(waits, 99):.0f} ms, max {max(waits):.0f} ms"
        )
    return 0 if once == len(counts) else 1


def _questions(args: argparse.Namespace) -> list[str]:
    """The questions to send: --questions-file's (people's questions, one JSON object a line
    with "q", as in the newsqa sets; follow-ups sent alone), else the seed article's."""
    if args.questions_file is None:
        return QUESTIONS
    lines = args.questions_file.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["q"] for line in lines if line.strip()]


@contextmanager
def _index_dir(args: argparse.Namespace) -> Iterator[Path]:
    """--index-dir (kept: an archive embedded once is measured many times), else a fresh one."""
    if args.index_dir is not None:
        yield args.index_dir
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp) / "index"


async def run(args: argparse.Namespace) -> int:
    texts = _questions(args)
    with _index_dir(args) as index_dir:
        started = time.perf_counter()
        keeper = IndexKeeper.open(
            args.seeds, index_dir=index_dir, workers=workers(args.progress), meaning=Meaning.load()
        )
        library = keeper.library
        stats = library.stats()
        pending = keeper.passages_to_embed()
        print(
            f"library: {stats.articles} articles, {stats.passages} passages, {pending} not yet "
            f"embedded (loaded in {time.perf_counter() - started:.1f} s)"
        )
        deadline = str(args.deadline)
        with FakeBotApi() as fake:
            async with running_bot(
                fake, keeper, rate_limiter=_limiter(args), ANSWER_DEADLINE_SECONDS=deadline
            ):
                chats = []
                for i in range(args.chats):
                    user = fake.user(100_000 + i)
                    chats.append((user, fake.private_chat(user)))
                questions = []
                t0 = time.monotonic()
                for n in range(args.questions):
                    user, chat = chats[n % args.chats]
                    questions.append(fake.send_text(chat, user, texts[n % len(texts)]))
                # A cheap predicate: checking every question each poll would steal the CPU.
                await fake.wait_for(
                    lambda: len(fake.calls_to("sendMessage")) >= len(questions),
                    timeout=args.timeout,
                    message="all answers",
                )
                await fake.settle(0.5)
                elapsed = time.monotonic() - t0
        keeper.close()

    replies = [fake.replies_to(q) for q in questions]
    counts = [len(r) for r in replies]
    busy_text = {t(lang, "busy") for lang in ("zh", "en")}
    busy = sum(1 for r in replies if len(r) == 1 and r[0].params["text"] in busy_text)
    answered = [r[0] for r in replies if len(r) == 1 and r[0].params["text"] not in busy_text]
    # From the moment the questions were sent (all at once) to the answer's arrival.
    waits = [(reply.at - t0) * 1000 for reply in answered]
    late = sum(1 for w in waits if args.deadline and w > args.deadline * 1000)
    handed = fake.update_handed_out_at
    # Update ids were assigned in push order, one per question.
    latencies = [
        (r[0].at - handed[update_id]) * 1000
        for update_id, r in enumerate(replies, start=1)
        if r and update_id in handed
    ]

    mode = "Telegram flood limit (30 msg/s) enforced" if args.flood_limit else "no flood limit"
    print(
        f"{args.questions} questions from {args.chats} chats at once, {mode}, "
        f"ANSWER_DEADLINE_SECONDS={deadline}"
    )
    once, never = counts.count(1), counts.count(0)
    print(
        f"replied: {once} exactly once ({len(answered)} answers, {busy} told busy), "
        f"{never} never, {len(counts) - once - never} twice+"
    )
    print(
        f"answered: {len(answered) / len(questions):.1%}, {late} of them after the deadline; "
        f"{len(answered) / elapsed:.1f} answers/s ({once / elapsed:.1f} replies/s, "
        f"{elapsed:.2f} s in all)"
    )
    if waits:
        print(
            f"answer time (sent → answer): p50 {percentile(waits, 50):.0f} ms, "
            f"p99 {percentile(waits, 99):.0f} ms, max {max(waits):.0f} ms"
        )
    if latencies:
        print(
            f"handling latency (handed out → reply): p50 {percentile(latencies, 50):.0f} ms, "
            f"p99 {percentile(latencies, 99):.0f} ms, max {max(latencies):.0f} ms, "
            f"mean {statistics.fmean(latencies):.0f} ms"
        )
    return 0 if all(c == 1 for c in counts) and not late else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=Path, default=REPO / "seeds")
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--questions-file",
        type=Path,
        help="people's questions, JSON lines with \"q\" (default: the seed article's)",
    )
    parser.add_argument(
        "--index-dir", type=Path, help="keep the index here (default: a fresh one, deleted)"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=Settings().answer_deadline_seconds,
        help="ANSWER_DEADLINE_SECONDS (default: the setting's default)",
    )
    parser.add_argument(
        "--flood-limit", action="store_true", help="keep AIORateLimiter's Telegram flood limits"
    )
    neighbour = parser.add_argument_group("noisy neighbour")
    neighbour.add_argument(
        "--noisy-neighbour", action="store_true", help="one user floods while others ask"
    )
    neighbour.add_argument("--flood", type=int, default=1000, help="the flooder's questions")
    neighbour.add_argument("--others", type=int, default=20, help="other users")
    neighbour.add_argument("--questions-each", type=int, default=5, help="each other user's")
    neighbour.add_argument(
        "--questions-per-minute",
        type=int,
        default=Settings().questions_per_minute,
        help="the per-user rate (default: the setting's default; 0 = none)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.progress = reporter(args.quiet)
    return asyncio.run(noisy_neighbour(args) if args.noisy_neighbour else run(args))


if __name__ == "__main__":
    sys.exit(main())
