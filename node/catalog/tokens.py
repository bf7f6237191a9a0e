"""Search tokens: the same words on SQLite (FTS5) and PostgreSQL (tsvector), so both find the same records.

Each database's own word splitting differs (notably for Chinese, Japanese and Korean, which have no spaces), so
the node splits text itself and both databases index the resulting space-separated tokens verbatim: words of
letters and digits, case-folded and NFKC-normalised; CJK text as single characters and overlapping pairs, so
that "陶艺" finds "陶艺入门".
"""

from __future__ import annotations

import re
import unicodedata

WORD = re.compile(r"[^\W_]+")
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
MAX_TOKEN_LENGTH = 40
MAX_QUERY_TOKENS = 12


def _pieces(text: str) -> list[tuple[str, bool]]:
    """Runs of CJK characters (True) and of other characters (False), in order."""
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in CJK.finditer(text):
        pieces.append((text[position:match.start()], False))
        pieces.append((match.group(), True))
        position = match.end()
    pieces.append((text[position:], False))
    return pieces


def text_tokens(text: str) -> list[str]:
    """Tokens of indexed text: words, plus CJK single characters and pairs."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = []
    for piece, cjk in _pieces(normal):
        if cjk:
            out.extend(piece)
            out.extend(piece[i : i + 2] for i in range(len(piece) - 1))
        else:
            out.extend(word[:MAX_TOKEN_LENGTH] for word in WORD.findall(piece))
    return out


def query_tokens(text: str) -> list[str]:
    """Tokens a query must all match: words, and CJK runs as pairs (one character alone as itself)."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = []
    for piece, cjk in _pieces(normal):
        if cjk:
            out.extend([piece] if len(piece) == 1 else [piece[i : i + 2] for i in range(len(piece) - 1)])
        else:
            out.extend(word[:MAX_TOKEN_LENGTH] for word in WORD.findall(piece))
    return list(dict.fromkeys(out))[:MAX_QUERY_TOKENS]


def indexed(text: str) -> str:
    """The ``tokens`` column: distinct tokens, space-separated."""
    return " ".join(dict.fromkeys(text_tokens(text)))
