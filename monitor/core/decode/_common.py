"""Field access shared by the format decoders.

Every getter takes the dotted `path` of the field it reads: a missing or mistyped field raises
`Invalid(reason, path)`, which the format decoder's boundary (one `try` in each public decode
function) turns into a DecodeError. The path names a field of the documented format, never a
value from the body.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from monitor.core.decode import DecodeError, DecodeReason
from monitor.core.events import TenantHints

JsonObject = dict[str, Any]

MISSING = DecodeReason.MISSING_FIELD
WRONG = DecodeReason.WRONG_TYPE


class Invalid(Exception):
    """A field of a known shape is missing or of the wrong type."""

    def __init__(self, reason: DecodeReason, detail: str) -> None:
        super().__init__(reason, detail)
        self.error = DecodeError(reason, detail)


# What a format decoder's boundary maps to WRONG_TYPE + the family's name: the backstop for a
# shape no getter anticipated. `Invalid` names the field; this names the format, never the body.
BACKSTOP = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)


_HintFields = tuple[
    str | None, str | None, str | None, str | None, str | None, str | None, str | None,
    tuple[tuple[str, str], ...],
]  # fmt: skip
_interned: dict[_HintFields, TenantHints] = {}
MAX_INTERNED_HINTS = 4096


def hints(
    *,
    ses_tenant: str | None = None,
    tenant_tag: str | None = None,
    configuration_set: str | None = None,
    identity: str | None = None,
    from_domain: str | None = None,
    pinpoint_app: str | None = None,
    sms_configuration_set: str | None = None,
    sms_context: tuple[tuple[str, str], ...] = (),
) -> TenantHints:
    """TenantHints, one shared instance per distinct value.

    A stream has few distinct hints, and building the frozen dataclass costs more than the
    lookup. Bounded, so a flood of distinct values (a misconfigured sender, a fuzzer) cannot
    grow memory.
    """
    fields = (
        ses_tenant, tenant_tag, configuration_set, identity, from_domain, pinpoint_app,
        sms_configuration_set, sms_context,
    )  # fmt: skip
    interned = _interned.get(fields)
    if interned is None:
        if len(_interned) >= MAX_INTERNED_HINTS:
            _interned.clear()
        interned = _interned[fields] = TenantHints(*fields)
    return interned


def obj(parent: JsonObject, key: str, path: str) -> JsonObject:
    """A required JSON object."""
    v = parent.get(key)
    if isinstance(v, dict):
        return v
    raise Invalid(MISSING if v is None else WRONG, path)


def opt_obj(parent: JsonObject, key: str, path: str) -> JsonObject | None:
    v = parent.get(key)
    if v is None or isinstance(v, dict):
        return v
    raise Invalid(WRONG, path)


def string(parent: JsonObject, key: str, path: str) -> str:
    """A required, non-empty string."""
    v = parent.get(key)
    if isinstance(v, str) and v:
        return v
    raise Invalid(MISSING if v is None or v == "" else WRONG, path)


def opt_string(parent: JsonObject, key: str, path: str) -> str | None:
    """An optional string; "" reads as absent."""
    v = parent.get(key)
    if v is None or isinstance(v, str):
        return v or None
    raise Invalid(WRONG, path)


def str_list(parent: JsonObject, key: str, path: str) -> list[str]:
    """A required, non-empty list of strings (recipient lists)."""
    v = parent.get(key)
    if isinstance(v, list) and v:
        for item in v:
            if not isinstance(item, str):
                raise Invalid(WRONG, path)
        return v
    raise Invalid(MISSING if v is None or v == [] else WRONG, path)


def address_list(parent: JsonObject, key: str, path: str) -> list[str]:
    """The `emailAddress` of each object of a required, non-empty list (bouncedRecipients...)."""
    v = parent.get(key)
    if not isinstance(v, list) or not v:
        raise Invalid(MISSING if v is None or v == [] else WRONG, path)
    out: list[str] = []
    for item in v:
        if not isinstance(item, dict):
            raise Invalid(WRONG, path)
        out.append(string(item, "emailAddress", path + ".emailAddress"))
    return out


def iso_time(value: object, path: str) -> float:
    """An ISO-8601 timestamp as seconds since the epoch; no offset means UTC."""
    if not isinstance(value, str):
        raise Invalid(MISSING if value is None else WRONG, path)
    try:
        dt = datetime.fromisoformat(value)  # 3.11: handles "Z", "+0000", " +0000", fractions
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    except (ValueError, OverflowError):
        raise Invalid(WRONG, path) from None


# Why a fast path: SES writes every timestamp as `2026-11-23T14:05:07.123Z`, and parsing one
# then spelling it for the key (fromisoformat, timestamp(), str(round(t * 1000))) is a good
# part of a record's decoding. Here each distinct second is parsed once (its minute by
# fromisoformat, so what it accepts is unchanged, its seconds from a table) and cached; the
# milliseconds come from a table. The tables also reject anything but ASCII digits in range.
# The float is the same: timestamp() is exact microseconds divided by 10**6, and an int
# division is correctly rounded, so millis / 1000 is that same float. Any other spelling
# (another length, an offset, a comma) takes the general path.
_SECONDS = {f"{i:02d}": i for i in range(60)}
_MILLIS = {f"{i:03d}": i for i in range(1000)}
_MINUTES: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM" → seconds since the epoch
_SECONDS_MS: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" → milliseconds since the epoch
MAX_CACHED_MINUTES = 4096
MAX_CACHED_SECONDS = 4096  # a stream spans few distinct seconds at a time


def iso_time_key(value: object, path: str) -> tuple[float, str]:
    """`iso_time` and its `time_part`, at once."""
    if type(value) is str and len(value) == 24 and value[23] == "Z" and value[19] == ".":
        base = _SECONDS_MS.get(value[:19])
        if base is None:
            base = _second(value[:19])
        ms = _MILLIS.get(value[20:23])
        if base is not None and ms is not None:
            millis = base + ms
            return millis / 1000, str(millis)
    t = iso_time(value, path)
    return t, time_part(t)


def _second(prefix: str) -> int | None:
    """Milliseconds since the epoch at `YYYY-MM-DDTHH:MM:SS` (cached), or None."""
    second = _SECONDS.get(prefix[17:19])
    if second is None or prefix[16] != ":":
        return None
    minute = _MINUTES.get(prefix[:16])
    if minute is None:
        minute = _minute(prefix[:16])
        if minute is None:
            return None
    if len(_SECONDS_MS) >= MAX_CACHED_SECONDS:
        _SECONDS_MS.clear()  # bounded
    base = _SECONDS_MS[prefix] = (minute + second) * 1000
    return base


def _minute(prefix: str) -> int | None:
    # Only the plain `YYYY-MM-DDTHH:MM` form, naive: whatever else fromisoformat accepts in
    # 16 characters (an offset, week dates) must not be taken for a time with more after it.
    if prefix[4] != "-" or prefix[7] != "-" or prefix[10] != "T" or prefix[13] != ":":
        return None
    try:
        dt = datetime.fromisoformat(prefix)
    except ValueError:
        return None
    if dt.tzinfo is not None or dt.second or dt.microsecond:
        return None
    seconds = int(dt.replace(tzinfo=UTC).timestamp())
    if len(_MINUTES) >= MAX_CACHED_MINUTES:
        _MINUTES.clear()  # bounded: a stream spans few distinct minutes at a time
    _MINUTES[prefix] = seconds
    return seconds


MAX_EPOCH_S = 253_402_300_800.0  # 10000-01-01T00:00:00Z


def ms_time(value: object, path: str) -> float:
    """Unix time in milliseconds (a number, or a string of digits) as seconds."""
    if isinstance(value, bool) or value is None:
        raise Invalid(MISSING if value is None else WRONG, path)
    try:
        t = float(value) / 1000.0  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise Invalid(WRONG, path) from None
    # Finite and within what ISO-8601 timestamps can say (years 1970-9999).
    if not math.isfinite(t) or not 0.0 <= t < MAX_EPOCH_S:
        raise Invalid(WRONG, path)
    return t


def time_part(t: float) -> str:
    """Event time for a key: whole milliseconds, so every feed's spelling of it agrees."""
    return str(round(t * 1000.0))


def bare_address(value: str) -> str:
    """`Name <a@b.example>` → `a@b.example`; a bare address is returned stripped."""
    start = value.rfind("<")
    if start >= 0:
        end = value.find(">", start)
        return value[start + 1 : end if end > start else None].strip()
    return value.strip()


def domain_of(address: str) -> str | None:
    """The lower-cased domain after the last `@`, or None: never the address itself."""
    _, at, domain = address.rpartition("@")
    if not at:
        return None
    domain = domain.strip().rstrip(">").strip().lower()
    return domain or None


def recipient_domains(addresses: list[str]) -> tuple[str, ...]:
    if len(addresses) == 1:  # the common case: one recipient per bounce or complaint
        d = domain_of(addresses[0])
        return (d,) if d else ()
    return tuple(sorted({d for a in addresses if (d := domain_of(a))}))


def recipients_part(addresses: list[str]) -> str:
    """The record's recipients for its key (hashed, never stored)."""
    if len(addresses) == 1:
        return addresses[0]
    return "\x1e".join(sorted(addresses))


def context_pairs(value: object, path: str) -> tuple[tuple[str, str], ...]:
    """An SMS `context` object's string entries, sorted; other value types are skipped."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise Invalid(WRONG, path)
    if not value:
        return ()
    return tuple(sorted((k, v) for k, v in value.items() if isinstance(v, str)))
