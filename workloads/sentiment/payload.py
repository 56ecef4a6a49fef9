"""Request parsing of ``POST /analyze``: body size, content type, the JSON payload, each text.

Pure functions over bytes and headers (no Starlette types beyond ``request.stream()``),
so every rule is unit-tested without a server; each refusal is a ``BadRequest``
that the app turns into the JSON 4xx the module docstring of ``server.py`` lists.
"""
from __future__ import annotations

import json
from typing import Any, List, Optional, Tuple

from workloads.sentiment.config import Settings

JSON_TYPES = ("application/json",)

#: Characters per token, roughly, of English WordPiece text: the queue's unit of work is a token estimate.
CHARS_PER_TOKEN = 4
#: Tokens the tokenizer adds to every text ([CLS] and [SEP]).
SPECIAL_TOKENS = 2


class BadRequest(Exception):
    """A request the server refuses: its HTTP status, a one-line message and a JSON-able detail.

    ``body_unread``: refused before the whole body was read, so the answer closes the connection."""

    def __init__(self, status: int, message: str, detail: Any = None, body_unread: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.body_unread = body_unread


def text_cost(text: str, max_seq_len: int) -> int:
    """A text's estimated tokens, as the tokenizer will truncate it: the batch queue's unit of work."""
    return min(max_seq_len, -(-len(text) // CHARS_PER_TOKEN)) + SPECIAL_TOKENS


def declared_length(headers) -> Optional[int]:
    """Content-Length as a number; None when absent (chunked). An invalid one is a 400."""
    declared = headers.get("content-length")
    if declared is None:
        return None
    try:
        return int(declared)
    except ValueError:
        raise BadRequest(400, "invalid Content-Length", declared, body_unread=True) from None


def body_cost_estimate(content_length: Optional[int], settings: Settings) -> int:
    """A request's estimated tokens from its Content-Length alone (unknown: one short text),
    capped at MAX_TEXTS full-length texts: the load-shedding check before the body is read."""
    most = settings.max_texts * (settings.max_seq_len + SPECIAL_TOKENS)
    if not content_length:
        return SPECIAL_TOKENS + 1
    return min(most, -(-content_length // CHARS_PER_TOKEN) + SPECIAL_TOKENS)


async def read_body_limited(request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it is known to exceed ``limit`` bytes:
    from Content-Length before reading, else while the stream arrives."""
    n = declared_length(request.headers)
    if n is not None and n > limit:
        raise BadRequest(413, "request body too large", {"max_body_bytes": limit, "content_length": n},
                         body_unread=True)
    chunks: List[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, "request body too large", {"max_body_bytes": limit}, body_unread=True)
        chunks.append(chunk)
    return b"".join(chunks)


def _check_text(value: Any, where: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise BadRequest(400, f"{where} must be a string", {"got": type(value).__name__})
    if not value.strip():
        raise BadRequest(400, f"{where} is empty", None)
    if len(value) > max_chars:
        raise BadRequest(413, f"{where} is too long", {"max_text_chars": max_chars, "chars": len(value)})
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from JSON escapes would break the tokenizer
        raise BadRequest(400, f"{where} is not valid Unicode", "unpaired surrogate") from None
    return value


def parse_payload(body: bytes, settings: Settings) -> Tuple[List[str], bool]:
    """Body bytes -> (texts, single?) or BadRequest."""
    try:
        text_body = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(400, "body is not UTF-8", str(exc)) from None
    try:
        payload = json.loads(text_body)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(400, "body is not valid JSON", str(exc)[:200]) from None
    if not isinstance(payload, dict):
        raise BadRequest(400, "body must be a JSON object with `text` or `texts`", {"got": type(payload).__name__})
    has_text, has_texts = "text" in payload, "texts" in payload
    if has_text and has_texts:
        raise BadRequest(400, "give either `text` or `texts`, not both")
    if not (has_text or has_texts):
        raise BadRequest(400, "missing `text` (a string) or `texts` (a list of strings)")
    if has_text:
        return [_check_text(payload["text"], "`text`", settings.max_text_chars)], True
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise BadRequest(400, "`texts` must be a list of strings", {"got": type(texts).__name__})
    if not texts:
        raise BadRequest(400, "`texts` is empty")
    if len(texts) > settings.max_texts:
        raise BadRequest(413, "too many texts", {"max_texts": settings.max_texts, "texts": len(texts)})
    return [_check_text(t, f"`texts[{i}]`", settings.max_text_chars) for i, t in enumerate(texts)], False


def is_json(content_type: Optional[str]) -> bool:
    """application/json or any application/*+json, parameters (charset) ignored."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime in JSON_TYPES or (mime.startswith("application/") and mime.endswith("+json"))


async def read_texts(request, settings: Settings) -> Tuple[List[str], bool]:
    """A ``POST /analyze`` request -> (texts, single?): content type, then the size-limited body, then the payload."""
    if not is_json(request.headers.get("content-type")):
        raise BadRequest(415, "Content-Type must be application/json", {"got": request.headers.get("content-type")},
                         body_unread=True)
    body = await read_body_limited(request, settings.max_body_bytes)
    return parse_payload(body, settings)
