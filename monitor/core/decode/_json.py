"""The one JSON parser every decoder uses (a later switch to orjson happens here only)."""

from __future__ import annotations

import json
from typing import Any


class InvalidUTF8(ValueError):
    """The body is bytes but not UTF-8."""


def loads(data: str | bytes | bytearray) -> Any:
    """Parse one JSON document from `str` or UTF-8 `bytes`.

    Raises InvalidUTF8 for bytes that are not UTF-8 and ValueError for anything that is not
    one JSON document. With orjson: `orjson.loads(data)` takes both types; map its
    "not valid UTF-8" JSONDecodeError to InvalidUTF8 to keep the distinction.
    """
    if not isinstance(data, str):
        try:
            # Decode explicitly: stdlib json would also accept UTF-16/32 bytes, SQS bodies are
            # UTF-8, and "invalid_utf8" is its own metric reason.
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidUTF8("body is not UTF-8") from None
    try:
        return json.loads(data)
    except RecursionError:
        # Deeply nested arrays ("[[[[...") exhaust the C parser's stack: still just bad JSON.
        raise ValueError("JSON nested too deeply") from None
