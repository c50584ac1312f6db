"""The Telegram bot: answers questions about the news archive with passages from `retrieval`."""
