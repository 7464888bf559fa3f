"""The JSON parser every decoder uses: orjson, about 3× the standard library's speed on SES
bodies (the hot path parses each SNS-wrapped body twice). The one exception is decode.typed:
msgspec's typed decoding of the common body, built to accept only what orjson accepts too."""

from __future__ import annotations

from typing import Any

import orjson


class InvalidUTF8(ValueError):
    """The body is bytes but not UTF-8."""


# orjson.loads itself, for hot paths that handle its errors (a ValueError) themselves and so
# save the wrapper's call: `is_utf8_error` tells what `loads` would have raised.
parse = orjson.loads


def is_utf8_error(e: ValueError) -> bool:
    """Whether an error of `parse` means the input is not UTF-8 (loads: InvalidUTF8)."""
    text = str(e).lower()
    return "utf-8" in text or "surrogate" in text


def loads(data: str | bytes | bytearray) -> Any:
    """Parse one JSON document from `str` or UTF-8 `bytes`.

    Raises InvalidUTF8 for bytes (or a str with lone surrogates) that are not UTF-8, and
    ValueError for anything that is not one JSON document (orjson also refuses nesting
    deeper than 1024, which stdlib json would take to a RecursionError).
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if is_utf8_error(e):
            raise InvalidUTF8("body is not UTF-8") from None
        raise ValueError(str(e)) from None
