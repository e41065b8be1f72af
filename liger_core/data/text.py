"""Item text rendering (DESIGN §5): the one string per item that the text model embeds."""

from __future__ import annotations

import hashlib

import pandas as pd

from liger_core.config import TEXT_FIELDS

_TEMPLATES = {
    "title": "This item is called '{}'.",
    "brand": "It is manufactured by '{}'.",
    "categories": "It belongs to the categories of {}.",
    "price": "It is priced at {}.",
    "description": "Its description: {}",
}


def _present(value: object) -> str | None:
    """Normalise a field: None, NaN, pandas NA and blank strings all mean "missing"."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    text = " ".join(str(value).split())
    return text or None


def render_item_text(**fields: object) -> str:
    """Join the available fields into one sentence-like string; missing fields are skipped.

    Only the known fields are rendered, in a fixed order, so the same item always yields
    the same text (and hash) whatever the source's column order.
    """
    unknown = set(fields) - set(TEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown text field(s): {sorted(unknown)}")
    parts = []
    for name in TEXT_FIELDS:
        value = _present(fields.get(name))
        if value is not None:
            parts.append(_TEMPLATES[name].format(value))
    return " ".join(parts)


def text_hash(text: str) -> str:
    """Content hash that decides whether an item must be re-embedded."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
