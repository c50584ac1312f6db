"""The project's version: one place, the installed package's metadata (pyproject's `version`)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("news-qa-bot")
except PackageNotFoundError:  # run from a checkout that was never installed
    VERSION = "0+unknown"
