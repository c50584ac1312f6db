"""The bot's commands, in one table: their names, who may use them, and their words.

Every place that lists or answers commands reads `COMMANDS`: handler registration (app.py,
which puts each command's scope check in front of its handler), the command menu Telegram
shows (`menu`), /help (`help_lines`) and the console (`find`). Each command is answered by
the method of the same name on `handlers.BotHandlers`, and in the console by the one on
`console.ConsoleSession` (tests check both exist). The console's own commands, which stand
in for the page buttons and the end of a chat, are in `CONSOLE_ONLY`: each surface's /help
lists only what works there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from .i18n import Lang


class Scope(Enum):
    """Who may use a command."""

    EVERYONE = "everyone"
    # Anyone in a private chat; in groups, the group's administrators (anonymous ones too).
    CHAT_ADMINS = "chat admins"
    # ADMIN_USER_IDS only. Left out of the menu and /help: others would only be refused.
    BOT_ADMINS = "bot admins"


@dataclass(frozen=True, slots=True)
class Command:
    """One command: /name (and its aliases), and the words that present it."""

    name: str
    scope: Scope = Scope.EVERYONE
    # Telegram's command menu (setMyCommands: plain text, 1-256 characters). Every language,
    # for each command the menu and /help list (scope other than BOT_ADMINS).
    menu: Mapping[Lang, str] = field(default_factory=dict)
    # The line in /help after "/name" (trusted Telegram HTML; "{bot}" is the bot's username).
    help: Mapping[Lang, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    console: bool = True  # answered by `python -m bot --console` (which has no chat)
    # The /help line in the console, where it differs (there are no groups there).
    console_help: Mapping[Lang, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


COMMANDS: tuple[Command, ...] = (
    Command(
        "ask",
        menu={"zh-Hans": "提问", "zh-Hant": "提問", "en": "Ask a question"},
        help={
            "zh-Hans": "问题 — 提问（群组里用 /ask@{bot}）",
            "zh-Hant": "問題 — 提問（群組裡用 /ask@{bot}）",
            "en": "question — ask (in groups: /ask@{bot})",
        },
        console_help={
            "zh-Hans": "问题 — 提问（也可以直接输入问题）",
            "zh-Hant": "問題 — 提問（也可以直接輸入問題）",
            "en": "question — ask (or just type the question)",
        },
    ),
    Command(
        "latest",
        menu={"zh-Hans": "最新文章", "zh-Hant": "最新文章", "en": "Newest articles"},
        help={
            "zh-Hans": "[n] — 最新的 n 篇文章",
            "zh-Hant": "[n] — 最新的 n 篇文章",
            "en": "[n] — the n newest articles",
        },
    ),
    Command(
        "about",
        menu={"zh-Hans": "收录情况", "zh-Hant": "收錄情況", "en": "What the archive holds"},
        help={
            "zh-Hans": "— 收录了多少文章",
            "zh-Hant": "— 收錄了多少文章",
            "en": "— what the archive holds",
        },
    ),
    Command(
        "subscribe",
        menu={
            "zh-Hans": "订阅新文章",
            "zh-Hant": "訂閱新文章",
            "en": "Get new articles as they arrive",
        },
        help={
            "zh-Hans": "— 有新文章时发到这个聊天（群组里仅限管理员）",
            "zh-Hant": "— 有新文章時發到這個聊天（群組裡僅限管理員）",
            "en": "— get each new article in this chat (in groups: admins only)",
        },
        scope=Scope.CHAT_ADMINS,
        console=False,
    ),
    Command(
        "unsubscribe",
        menu={"zh-Hans": "退订新文章", "zh-Hant": "退訂新文章", "en": "Stop new articles"},
        help={
            "zh-Hans": "— 停止推送新文章",
            "zh-Hant": "— 停止推送新文章",
            "en": "— stop the new articles",
        },
        scope=Scope.CHAT_ADMINS,
        console=False,
    ),
    Command(
        "follow",
        menu={
            "zh-Hans": "关注话题：新文章回答它时推送",
            "zh-Hant": "關注話題：新文章回答它時推送",
            "en": "Follow a topic: new passages that answer it",
        },
        help={
            "zh-Hans": "问题或话题 — 有新文章回答它时，把那一段发到这里（群组里仅限管理员）",
            "zh-Hant": "問題或話題 — 有新文章回答它時，把那一段發到這裡（群組裡僅限管理員）",
            "en": "question or topic — post new passages that answer it (in groups: admins only)",
        },
        console_help={
            "zh-Hans": "问题或话题 — 看看最近 7 天有哪些段落回答它（关注后会这样推送）",
            "zh-Hant": "問題或話題 — 看看最近 7 天有哪些段落回答它（關注後會這樣推送）",
            "en": "question or topic — the passages of the last 7 days that answer it",
        },
        scope=Scope.CHAT_ADMINS,
    ),
    Command(
        "following",
        menu={"zh-Hans": "关注的话题", "zh-Hant": "關注的話題", "en": "Topics this chat follows"},
        help={
            "zh-Hans": "— 这个聊天关注的话题（带编号）",
            "zh-Hant": "— 這個聊天關注的話題（帶編號）",
            "en": "— the topics this chat follows, numbered",
        },
        console=False,
    ),
    Command(
        "unfollow",
        menu={"zh-Hans": "取消关注话题", "zh-Hant": "取消關注話題", "en": "Stop following a topic"},
        help={
            "zh-Hans": "编号|all — 取消关注（群组里仅限管理员）",
            "zh-Hant": "編號|all — 取消關注（群組裡僅限管理員）",
            "en": "number|all — stop following (in groups: admins only)",
        },
        scope=Scope.CHAT_ADMINS,
        console=False,
    ),
    Command(
        "autoanswer",
        menu={
            "zh-Hans": "群组：自动回答问题（on/off）",
            "zh-Hant": "群組：自動回答問題（on/off）",
            "en": "Groups: answer questions unasked (on/off)",
        },
        help={
            "zh-Hans": "on|off — 群组里不用 @我，也回答像问题的消息（仅限管理员）",
            "zh-Hant": "on|off — 群組裡不用 @我，也回答像問題的訊息（僅限管理員）",
            "en": "on|off — in groups, answer question-like messages unasked (admins only)",
        },
        scope=Scope.CHAT_ADMINS,
        console=False,
    ),
    Command(
        "help",
        menu={"zh-Hans": "使用说明", "zh-Hant": "使用說明", "en": "How to use this bot"},
        help={"zh-Hans": "— 这份说明", "zh-Hant": "— 這份說明", "en": "— this message"},
        aliases=("start",),  # what Telegram sends when someone opens the bot
    ),
    Command("reload", scope=Scope.BOT_ADMINS, console=False),
)

# The console's own: /next for the page buttons (and /more, the same), /quit (and /exit).
NEXT = Command(
    "next",
    help={
        "zh-Hans": "— 上一个问题的下一页结果",
        "zh-Hant": "— 上一個問題的下一頁結果",
        "en": "— the next page of the last question's results",
    },
    aliases=("more",),
)
QUIT = Command(
    "quit",
    help={
        "zh-Hans": "— 退出（或按 Ctrl-D）",
        "zh-Hant": "— 退出（或按 Ctrl-D）",
        "en": "— leave (or Ctrl-D)",
    },
    aliases=("exit",),
)
CONSOLE_ONLY: tuple[Command, ...] = (NEXT, QUIT)

# setMyCommands takes two-letter ISO 639-1 codes, which cannot tell simplified from
# traditional Chinese: the default menu is in simplified Chinese, English users get English.
MENU_LANGUAGES: Mapping[str | None, Lang] = {None: "zh-Hans", "en": "en"}


def listed() -> list[Command]:
    """The commands shown in the menu and in /help, in the table's order."""
    return [c for c in COMMANDS if c.scope is not Scope.BOT_ADMINS]


def menu(lang: Lang, *, group_member: bool = False) -> list[tuple[str, str]]:
    """(command, description) pairs for setMyCommands. A group member who is not one of its
    administrators is shown only what they may use (the menu of admins and of private chats
    lists every command)."""
    shown = [c for c in listed() if not group_member or c.scope is Scope.EVERYONE]
    return [(c.name, c.menu[lang]) for c in shown]


def help_lines(lang: Lang, bot: str, *, console: bool = False) -> str:
    """The command list in /help, one line a command; `bot` is the escaped bot username. In
    the console, only the commands it answers, and its own."""
    if not console:
        return "\n".join(f"/{c.name} {c.help[lang].format(bot=bot)}" for c in listed())
    shown = [c for c in listed() if c.console] + list(CONSOLE_ONLY)
    return "\n".join(f"/{c.name} {(c.console_help or c.help)[lang].format(bot=bot)}" for c in shown)


def find(name: str) -> Command | None:
    """The command called `name` (or one of its aliases), if the bot has one."""
    return next((c for c in COMMANDS if name in c.names), None)
