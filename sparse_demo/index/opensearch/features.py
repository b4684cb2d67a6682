"""Token names as ``rank_features`` keys: a reversible percent-encoding.

Feature names cannot contain ``.`` (it splits field paths) and ``%`` is the escape
character; both, whitespace, control characters and a few query-syntax characters are
percent-encoded as their UTF-8 bytes.
"""

from __future__ import annotations

from urllib.parse import unquote

__all__ = ["decode_feature_name", "encode_feature_name"]

# Characters a feature name keeps as is; everything else in _UNSAFE or non-printable is %-encoded.
_UNSAFE = frozenset('.%*?,"\\/#&+=<>|{}[]()^~:!')


def encode_feature_name(token: str) -> str:
    """Make a token safe as a ``rank_features`` key (reversible).

    Args:
        token: A vocabulary token (any non-empty string).

    Returns:
        The token with ``.``, ``%``, whitespace, control and query-syntax characters
        percent-encoded.

    Raises:
        ValueError: the token is not a non-empty string.

    Example:
        >>> encode_feature_name("▁3.5%")
        '▁3%2E5%25'
        >>> decode_feature_name(encode_feature_name("a.b c"))
        'a.b c'
    """
    if not isinstance(token, str) or token == "":
        raise ValueError(f"token names must be non-empty strings, got {token!r}")
    out = []
    for ch in token:
        if ch in _UNSAFE or not ch.isprintable() or ch.isspace():
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def decode_feature_name(name: str) -> str:
    """Invert :func:`encode_feature_name`."""
    return unquote(name)
