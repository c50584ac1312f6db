"""The bot's own words in simplified Chinese, traditional Chinese and English.

Templates are trusted Telegram HTML; every {placeholder} must be filled with escaped text
(render.py does that). Passages from the articles are never translated. The commands' own
words (menu, /help lines) live with the command table in commands.py.
"""

from __future__ import annotations

from typing import Literal, get_args

Lang = Literal["zh-Hans", "zh-Hant", "en"]
LANGUAGES: tuple[Lang, ...] = get_args(Lang)
DEFAULT_LANG: Lang = "zh-Hans"

# Telegram sends the client's IETF tag (e.g. "zh-hans", "zh-TW", "en-GB") or nothing.
_TRADITIONAL = ("zh-tw", "zh-hk", "zh-mo", "zh-hant")


def pick_language(language_code: str | None) -> Lang:
    """The language for the bot's own words, from a Telegram user's language_code."""
    if not language_code:
        return DEFAULT_LANG
    code = language_code.strip().lower().replace("_", "-")
    if code == "en" or code.startswith("en-"):
        return "en"
    if any(code == t or code.startswith(t + "-") for t in _TRADITIONAL):
        return "zh-Hant"
    return DEFAULT_LANG


_STRINGS: dict[str, dict[Lang, str]] = {
    # /help: the intro, the example questions, the commands (commands.help_lines), and in
    # Telegram (not the console) how groups and inline mode work. {articles}: counted().
    "help_intro": {
        "zh-Hans": (
            "👋 我是新闻问答机器人。直接向我提问，我会从 {articles}里找出最相关的段落，"
            "并附上原文链接和日期。"
        ),
        "zh-Hant": (
            "👋 我是新聞問答機器人。直接向我提問，我會從 {articles}裡找出最相關的段落，"
            "並附上原文連結和日期。"
        ),
        "en": (
            "👋 I answer questions about the news. Ask me anything and I will find the most "
            "relevant passages in {articles} (mostly in Chinese), with a link to the source "
            "and its date."
        ),
    },
    "help_examples": {
        "zh-Hans": "<b>可以这样问：</b>\n{examples}",
        "zh-Hant": "<b>可以這樣問：</b>\n{examples}",
        "en": "<b>Try asking:</b>\n{examples}",
    },
    "help_commands": {
        "zh-Hans": "<b>命令</b>\n{commands}",
        "zh-Hant": "<b>指令</b>\n{commands}",
        "en": "<b>Commands</b>\n{commands}",
    },
    "help_groups": {
        "zh-Hans": (
            "在群组里：用 /ask@{bot} 提问，或回复我的消息追问。"
            "在任何聊天里输入 @{bot} 加问题，可以直接分享答案。"
        ),
        "zh-Hant": (
            "在群組裡：用 /ask@{bot} 提問，或回覆我的訊息追問。"
            "在任何聊天裡輸入 @{bot} 加問題，可以直接分享答案。"
        ),
        "en": (
            "In groups, use /ask@{bot} or reply to one of my messages. "
            "In any chat, type @{bot} and a question to share an answer."
        ),
    },
    "no_examples": {
        "zh-Hans": "（还没有收录任何文章）",
        "zh-Hant": "（還沒有收錄任何文章）",
        "en": "(no articles yet)",
    },
    "no_sure_examples": {
        "zh-Hans": "（用 /latest 看看有哪些文章，再就其中的内容提问）",
        "zh-Hant": "（用 /latest 看看有哪些文章，再就其中的內容提問）",
        "en": "(see what the articles are about with /latest, then ask about them)",
    },
    # Example questions: what an article's headline says happened, asked about (render.py).
    "example_question": {
        "zh-Hans": "{topic}是怎么回事？",
        "zh-Hant": "{topic}是怎麼回事？",
        "en": "{topic}是怎么回事？",
    },
    "results_header": {
        "zh-Hans": "🔎 关于「{question}」的相关段落（第 {page} 页）：",
        "zh-Hant": "🔎 關於「{question}」的相關段落（第 {page} 頁）：",
        "en": "🔎 Passages about “{question}” (page {page}):",
    },
    # When the engine is not confident the archive answers: the close passages follow, never
    # presented as an answer. {missing} is "" or the "missing_words" clause.
    "not_an_answer_header": {
        "zh-Hans": "🤔 没有找到「{question}」的确切答案{missing}。",
        "zh-Hant": "🤔 沒有找到「{question}」的確切答案{missing}。",
        "en": "🤔 I found no exact answer to “{question}”{missing}.",
    },
    "not_an_answer_note": {
        "zh-Hans": "以下段落可能相关，但不是答案（第 {page} 页）：",
        "zh-Hant": "以下段落可能相關，但不是答案（第 {page} 頁）：",
        "en": "These passages may be related, but they are not an answer (page {page}):",
    },
    "missing_words": {
        "zh-Hans": "：最接近的文章里没有提到{words}",
        "zh-Hant": "：最接近的文章裡沒有提到{words}",
        "en": ": the closest article does not mention {words}",
    },
    "missing_word": {"zh-Hans": "「{word}」", "zh-Hant": "「{word}」", "en": "“{word}”"},
    "missing_words_separator": {"zh-Hans": "、", "zh-Hant": "、", "en": ", "},
    # A follow-up, read with the earlier question it leans on.
    "read_with": {
        "zh-Hans": "↪️ 这个问题接着「{earlier}」来理解。",
        "zh-Hant": "↪️ 這個問題接著「{earlier}」來理解。",
        "en": "↪️ Read as a follow-up to “{earlier}”.",
    },
    "no_results": {
        "zh-Hans": (
            "没有找到与「{question}」相关的内容。换个说法试试，或者用 /latest 看看最新的文章。"
        ),
        "zh-Hant": (
            "沒有找到與「{question}」相關的內容。換個說法試試，或者用 /latest 看看最新的文章。"
        ),
        "en": (
            "Nothing found for “{question}”. Try rephrasing (the articles are mostly in "
            "Chinese), or see the newest articles with /latest."
        ),
    },
    "next_page": {"zh-Hans": "下一页 ›", "zh-Hant": "下一頁 ›", "en": "Next ›"},
    "prev_page": {"zh-Hans": "‹ 上一页", "zh-Hant": "‹ 上一頁", "en": "‹ Previous"},
    "ask_usage": {
        "zh-Hans": "用法：/ask 你的问题，例如 /ask {example}",
        "zh-Hant": "用法：/ask 你的問題，例如 /ask {example}",
        "en": "Usage: /ask your question, for example /ask {example}",
    },
    "mention_usage": {
        "zh-Hans": "在 @{bot} 后面写上你的问题，我就会回答。",
        "zh-Hant": "在 @{bot} 後面寫上你的問題，我就會回答。",
        "en": "Write your question after @{bot} and I will answer.",
    },
    "latest_usage": {
        "zh-Hans": "用法：/latest [n]，n 是 1 到 {max} 之间的数字。",
        "zh-Hant": "用法：/latest [n]，n 是 1 到 {max} 之間的數字。",
        "en": "Usage: /latest [n], where n is a number from 1 to {max}.",
    },
    "latest_empty": {
        "zh-Hans": "还没有收录任何文章。",
        "zh-Hant": "還沒有收錄任何文章。",
        "en": "There are no articles yet.",
    },
    # {articles}, {passages}, {count}: counted() phrases.
    "about": {
        "zh-Hans": "📚 收录了 {articles}、{passages}，最新文章日期：{newest}。",
        "zh-Hant": "📚 收錄了 {articles}、{passages}，最新文章日期：{newest}。",
        "en": "📚 {articles}, {passages}; newest article: {newest}.",
    },
    "about_skipped": {
        "zh-Hans": "⚠️ 有 {count}无法读取：",
        "zh-Hant": "⚠️ 有 {count}無法讀取：",
        "en": "⚠️ {count} could not be read:",
    },
    "none": {"zh-Hans": "无", "zh-Hant": "無", "en": "none"},
    "rate_limited": {
        "zh-Hans": (
            "🐢 你发得太快了：每分钟最多回答 {rate} 条。请稍等一会儿再问，这期间的消息我不会回复。"
        ),
        "zh-Hant": (
            "🐢 你傳得太快了：每分鐘最多回答 {rate} 則。請稍等一會兒再問，這期間的訊息我不會回覆。"
        ),
        "en": (
            "🐢 That's faster than I answer: at most {rate} a minute. Please wait a moment; "
            "I won't reply to messages sent meanwhile."
        ),
    },
    "error": {
        "zh-Hans": "😵 出了点问题，没能处理这条消息。请稍后再试。",
        "zh-Hant": "😵 出了點問題，沒能處理這則訊息。請稍後再試。",
        "en": "😵 Something went wrong while handling that. Please try again later.",
    },
    "stale_button": {
        "zh-Hans": "这个按钮已经过期了，请重新提问。",
        "zh-Hant": "這個按鈕已經過期了，請重新提問。",
        "en": "This button has expired. Please ask again.",
    },
    "nothing_to_continue": {
        "zh-Hans": "还没有可以翻页的回答：先提一个问题，再用 /next 看更多结果。",
        "zh-Hant": "還沒有可以翻頁的回答：先提一個問題，再用 /next 看更多結果。",
        "en": "Nothing to continue yet: ask a question first, then /next shows more results.",
    },
    "foreign_button": {
        "zh-Hans": "只有提问的人可以翻页，你也可以自己问一次。",
        "zh-Hant": "只有提問的人可以翻頁，你也可以自己問一次。",
        "en": "Only the person who asked can turn the pages. Feel free to ask yourself.",
    },
    "busy": {
        "zh-Hans": "⏳ 现在问的人太多，来不及回答你的问题。请过一会儿再问一次。",
        "zh-Hant": "⏳ 現在問的人太多，來不及回答你的問題。請過一會兒再問一次。",
        "en": "⏳ Too many questions at once: yours waited too long. Please ask again in a moment.",
    },
    "text_only": {
        "zh-Hans": "我只能读懂文字问题。请用文字提问，或发送 /help 查看用法。",
        "zh-Hant": "我只能讀懂文字問題。請用文字提問，或傳送 /help 查看用法。",
        "en": "I can only read text questions. Type a question, or send /help.",
    },
    # The console has no chat: /subscribe, /following… need one in Telegram.
    "console_needs_a_chat": {
        "zh-Hans": "{command} 要在 Telegram 的聊天里用。这里可以直接提问，或用 /follow 预览话题。",
        "zh-Hant": "{command} 要在 Telegram 的聊天裡用。這裡可以直接提問，或用 /follow 預覽話題。",
        "en": "{command} needs a Telegram chat. Here, just ask, or preview a topic with /follow.",
    },
    "unknown_command": {
        "zh-Hans": "我不认识这个命令。发送 /help 查看用法，或者直接提问。",
        "zh-Hant": "我不認識這個指令。傳送 /help 查看用法，或者直接提問。",
        "en": "I don't know that command. Send /help, or just ask a question.",
    },
    # Inline results when the engine is not confident: a button above them, each result's
    # title, and a note in front of the passage a chosen result posts.
    "inline_no_exact_answer": {
        "zh-Hans": "没有确切的答案，以下只是相关段落 · 打开机器人",
        "zh-Hant": "沒有確切的答案，以下只是相關段落 · 開啟機器人",
        "en": "No exact answer; these are related passages · open the bot",
    },
    "inline_related_title": {  # plain text: an inline result's title
        "zh-Hans": "（可能相关）{title}",
        "zh-Hant": "（可能相關）{title}",
        "en": "(may be related) {title}",
    },
    "inline_related_note": {
        "zh-Hans": "🤔 没有找到「{question}」的确切答案，这一段可能相关：",
        "zh-Hant": "🤔 沒有找到「{question}」的確切答案，這一段可能相關：",
        "en": "🤔 No exact answer to “{question}”; this passage may be related:",
    },
    "inline_no_results": {
        "zh-Hans": "没有找到相关内容 · 打开机器人",
        "zh-Hant": "沒有找到相關內容 · 開啟機器人",
        "en": "Nothing found · open the bot",
    },
    "inline_rate_limited": {
        "zh-Hans": "🐢 问得太快了，请稍等一分钟 · 打开机器人",
        "zh-Hant": "🐢 問得太快了，請稍等一分鐘 · 開啟機器人",
        "en": "🐢 Too many questions: wait a minute · open the bot",
    },
    "reload_done": {
        "zh-Hans": "已重新扫描文章目录：{result}。",
        "zh-Hant": "已重新掃描文章目錄：{result}。",
        "en": "Rescanned the articles: {result}.",
    },
    "reload_changed": {"zh-Hans": "有更新", "zh-Hant": "有更新", "en": "changes loaded"},
    "reload_unchanged": {"zh-Hans": "没有变化", "zh-Hant": "沒有變化", "en": "no changes"},
    "admin_only": {
        "zh-Hans": "这个命令只有管理员可以用。",
        "zh-Hant": "這個指令只有管理員可以用。",
        "en": "Only admins can use this command.",
    },
    "subscribed": {
        "zh-Hans": "✅ 已订阅：有新文章时我会发到这里。发送 /unsubscribe 可以退订。",
        "zh-Hant": "✅ 已訂閱：有新文章時我會發到這裡。傳送 /unsubscribe 可以退訂。",
        "en": "✅ Subscribed: I will post each new article here. Send /unsubscribe to stop.",
    },
    "already_subscribed": {
        "zh-Hans": "这个聊天已经订阅了。发送 /unsubscribe 可以退订。",
        "zh-Hant": "這個聊天已經訂閱了。傳送 /unsubscribe 可以退訂。",
        "en": "This chat is already subscribed. Send /unsubscribe to stop.",
    },
    "unsubscribed": {
        "zh-Hans": "已退订，不会再推送新文章。随时可以用 /subscribe 重新订阅。",
        "zh-Hant": "已退訂，不會再推送新文章。隨時可以用 /subscribe 重新訂閱。",
        "en": "Unsubscribed: no more new articles here. Send /subscribe to start again.",
    },
    "not_subscribed": {
        "zh-Hans": "这个聊天没有订阅。发送 /subscribe 可以订阅新文章。",
        "zh-Hant": "這個聊天沒有訂閱。傳送 /subscribe 可以訂閱新文章。",
        "en": "This chat is not subscribed. Send /subscribe to get new articles.",
    },
    # The refusal for commands of scope CHAT_ADMINS (commands.py): the subscription commands
    # and /autoanswer.
    "chat_admins_only": {
        "zh-Hans": "抱歉，只有群组管理员可以更改这个群组的设置。",
        "zh-Hant": "抱歉，只有群組管理員可以更改這個群組的設定。",
        "en": "Sorry, only the group's administrators can change its settings.",
    },
    "autoanswer_on": {
        "zh-Hans": (
            "✅ 自动回答已开启：群里像是问题的消息，只要文章里有确切的答案，我就会回复"
            "（每 {interval} 秒最多一次）。发送 /autoanswer off 关闭。"
        ),
        "zh-Hant": (
            "✅ 自動回答已開啟：群組裡像是問題的訊息，只要文章裡有確切的答案，我就會回覆"
            "（每 {interval} 秒最多一次）。傳送 /autoanswer off 關閉。"
        ),
        "en": (
            "✅ Auto-answer is on: when a message here reads like a question and the articles "
            "answer it, I reply (at most once every {interval} seconds). Send /autoanswer off "
            "to stop."
        ),
    },
    # /autoanswer on while the bot cannot see ordinary group messages.
    "autoanswer_on_privacy": {
        "zh-Hans": (
            "⚠️ 自动回答已开启，但我现在看不到群里的普通消息（隐私模式开着）。"
            "请在 @BotFather 发送 /setprivacy，选择 @{bot}，选 Disable，"
            "然后把我移出这个群组再重新加进来。"
        ),
        "zh-Hant": (
            "⚠️ 自動回答已開啟，但我現在看不到群組裡的一般訊息（隱私模式開著）。"
            "請在 @BotFather 傳送 /setprivacy，選擇 @{bot}，選 Disable，"
            "然後把我移出這個群組再重新加進來。"
        ),
        "en": (
            "⚠️ Auto-answer is on, but I cannot see ordinary messages in this group (privacy "
            "mode is on). In @BotFather send /setprivacy, pick @{bot}, choose Disable, then "
            "remove me from this group and add me again."
        ),
    },
    "autoanswer_off": {
        "zh-Hans": "自动回答已关闭：只回答 /ask、@我 和对我消息的回复。",
        "zh-Hant": "自動回答已關閉：只回答 /ask、@我 和對我訊息的回覆。",
        "en": "Auto-answer is off: I answer /ask, mentions and replies to my messages only.",
    },
    "autoanswer_usage": {
        "zh-Hans": "用法：/autoanswer on 或 /autoanswer off（现在是 {state}）。",
        "zh-Hant": "用法：/autoanswer on 或 /autoanswer off（現在是 {state}）。",
        "en": "Usage: /autoanswer on or /autoanswer off (now {state}).",
    },
    "autoanswer_private": {
        "zh-Hans": "/autoanswer 用于群组；在私聊里，我会回答你发的每一条消息。",
        "zh-Hant": "/autoanswer 用於群組；在私聊裡，我會回答你傳的每一則訊息。",
        "en": "/autoanswer is for groups; in a private chat I answer every message anyway.",
    },
    # /follow, /following, /unfollow and the alerts they bring ({topic}: escaped, shortened).
    "follow_usage": {
        "zh-Hans": (
            "用法：/follow 问题或话题，例如 /follow 日本防卫支出。有新文章回答它时，"
            "我会把那一段发到这里。"
        ),
        "zh-Hant": (
            "用法：/follow 問題或話題，例如 /follow 日本防衛支出。有新文章回答它時，"
            "我會把那一段發到這裡。"
        ),
        "en": (
            "Usage: /follow a question or topic, e.g. /follow 日本防卫支出. When a new article "
            "answers it, I post the passage here."
        ),
    },
    "follow_too_long": {
        "zh-Hans": "话题太长了：最多 {most} 个字，请写短一些。",
        "zh-Hant": "話題太長了：最多 {most} 個字，請寫短一些。",
        "en": "That topic is too long: {most} characters at most. Please shorten it.",
    },
    "follow_off": {
        "zh-Hans": "这个机器人没有开放话题关注。",
        "zh-Hant": "這個機器人沒有開放話題關注。",
        "en": "Following topics is turned off for this bot.",
    },
    "follow_followed": {
        "zh-Hans": (
            "✅ 已关注「{topic}」：有新文章回答它时，我会把那一段发到这里。"
            "/following 查看，/unfollow {number} 取消。"
        ),
        "zh-Hant": (
            "✅ 已關注「{topic}」：有新文章回答它時，我會把那一段發到這裡。"
            "/following 查看，/unfollow {number} 取消。"
        ),
        "en": (
            "✅ Following “{topic}”: when a new article answers it, I post the passage here. "
            "/following lists topics, /unfollow {number} stops this one."
        ),
    },
    "follow_already": {
        "zh-Hans": "这个聊天已经关注了「{topic}」。/following 查看全部。",
        "zh-Hant": "這個聊天已經關注了「{topic}」。/following 查看全部。",
        "en": "This chat already follows “{topic}”. /following lists its topics.",
    },
    "follow_full": {
        "zh-Hans": "这个聊天已经关注了 {most} 个话题，不能再多了：先用 /unfollow 取消一个。",
        "zh-Hant": "這個聊天已經關注了 {most} 個話題，不能再多了：先用 /unfollow 取消一個。",
        "en": "This chat follows {most} topics, the most it may: /unfollow one first.",
    },
    "follow_vague": {
        "zh-Hans": "「{topic}」太笼统了，没有可以用来找文章的词。请写具体些，如人名、地名或事件。",
        "zh-Hant": "「{topic}」太籠統了，沒有可以用來找文章的詞。請寫具體些，如人名、地名或事件。",
        "en": (
            "“{topic}” is too vague: it has no word to find articles by. Please be more "
            "specific: a name, a place or an event."
        ),
    },
    "following_none": {
        "zh-Hans": "这个聊天还没有关注任何话题。用 /follow 问题或话题 关注一个。",
        "zh-Hant": "這個聊天還沒有關注任何話題。用 /follow 問題或話題 關注一個。",
        "en": "This chat follows no topic yet. /follow a question or topic to start.",
    },
    "following_header": {
        "zh-Hans": "🔔 这个聊天关注的话题（{count}/{most}）：",
        "zh-Hant": "🔔 這個聊天關注的話題（{count}/{most}）：",
        "en": "🔔 Topics this chat follows ({count}/{most}):",
    },
    "following_hint": {
        "zh-Hans": "用 /unfollow 编号 取消一个，/unfollow all 全部取消。",
        "zh-Hant": "用 /unfollow 編號 取消一個，/unfollow all 全部取消。",
        "en": "/unfollow a number stops one, /unfollow all stops them all.",
    },
    "unfollow_usage": {
        "zh-Hans": "用法：/unfollow 编号（见 /following）或 /unfollow all。",
        "zh-Hant": "用法：/unfollow 編號（見 /following）或 /unfollow all。",
        "en": "Usage: /unfollow a number (see /following), or /unfollow all.",
    },
    "unfollow_no_such": {
        "zh-Hans": "没有第 {number} 个话题：这个聊天关注了 {count} 个，见 /following。",
        "zh-Hant": "沒有第 {number} 個話題：這個聊天關注了 {count} 個，見 /following。",
        "en": "There is no topic {number}: this chat follows {count}, see /following.",
    },
    "unfollowed_one": {
        "zh-Hans": "已取消关注「{topic}」。",
        "zh-Hant": "已取消關注「{topic}」。",
        "en": "Stopped following “{topic}”.",
    },
    "unfollowed_all": {
        "zh-Hans": "已取消关注全部 {count} 个话题。",
        "zh-Hant": "已取消關注全部 {count} 個話題。",
        "en": "Stopped following all {count} topics.",
    },
    "alert_header": {
        "zh-Hans": "🔔 新文章回答了这个聊天关注的话题：",
        "zh-Hant": "🔔 新文章回答了這個聊天關注的話題：",
        "en": "🔔 New articles answer topics this chat follows:",
    },
    "alert_topic": {
        "zh-Hans": "📌 关注：「{topic}」（/unfollow {number} 取消）",
        "zh-Hant": "📌 關注：「{topic}」（/unfollow {number} 取消）",
        "en": "📌 Following “{topic}” (/unfollow {number} to stop)",
    },
    # The console's /follow: what a topic would have matched lately.
    "follow_preview_header": {
        "zh-Hans": "🔎 最近 {days} 天的文章里回答「{topic}」的段落（关注后会这样推送）：",
        "zh-Hant": "🔎 最近 {days} 天的文章裡回答「{topic}」的段落（關注後會這樣推送）：",
        "en": (
            "🔎 Passages of the last {days} days that answer “{topic}” (what following it sends):"
        ),
    },
    "follow_preview_none": {
        "zh-Hans": "最近 {days} 天的文章里没有回答「{topic}」的段落。",
        "zh-Hant": "最近 {days} 天的文章裡沒有回答「{topic}」的段落。",
        "en": "No article of the last {days} days answers “{topic}”.",
    },
}


# Phrases with a number in them, (one, other) by the number: English says "1 article" but
# "2 articles"; Chinese has one form for both.
_COUNTED: dict[str, dict[Lang, tuple[str, str]]] = {
    "news_articles": {
        "zh-Hans": ("{n} 篇新闻文章", "{n} 篇新闻文章"),
        "zh-Hant": ("{n} 篇新聞文章", "{n} 篇新聞文章"),
        "en": ("{n} news article", "{n} news articles"),
    },
    "articles": {
        "zh-Hans": ("{n} 篇文章", "{n} 篇文章"),
        "zh-Hant": ("{n} 篇文章", "{n} 篇文章"),
        "en": ("{n} article", "{n} articles"),
    },
    "passages": {
        "zh-Hans": ("{n} 个段落", "{n} 个段落"),
        "zh-Hant": ("{n} 個段落", "{n} 個段落"),
        "en": ("{n} passage", "{n} passages"),
    },
    "files": {
        "zh-Hans": ("{n} 个文件", "{n} 个文件"),
        "zh-Hant": ("{n} 個檔案", "{n} 個檔案"),
        "en": ("{n} file", "{n} files"),
    },
    "latest_header": {
        "zh-Hans": ("🗞 最新的 {n} 篇文章：", "🗞 最新的 {n} 篇文章："),
        "zh-Hant": ("🗞 最新的 {n} 篇文章：", "🗞 最新的 {n} 篇文章："),
        "en": ("🗞 The newest article:", "🗞 The {n} newest articles:"),
    },
}


def counted(lang: Lang, key: str, n: int) -> str:
    """The phrase `key` for the number `n`, in the form that number takes in `lang`."""
    one, other = _COUNTED[key].get(lang) or _COUNTED[key][DEFAULT_LANG]
    return (one if n == 1 else other).format(n=n)


def counted_keys() -> list[str]:
    return list(_COUNTED)


def counted_translations(key: str) -> dict[Lang, tuple[str, str]]:
    return dict(_COUNTED[key])


def t(lang: Lang, key: str, **params: object) -> str:
    """The string `key` in `lang`, with params filled in (callers escape them for HTML)."""
    template = _STRINGS[key].get(lang) or _STRINGS[key][DEFAULT_LANG]
    return template.format(**params) if params else template


def string_keys() -> list[str]:
    return list(_STRINGS)


def translations(key: str) -> dict[Lang, str]:
    return dict(_STRINGS[key])
