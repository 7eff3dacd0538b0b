"""Search keys for Chinese names: the text itself, full pinyin and pinyin initials.

`上海建达` is found by 建达, by "shanghaijianda" and by "shjd".
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from pypinyin import Style, lazy_pinyin


def search_key(*parts: str | None) -> str:
    """Lower-cased text plus pinyin spellings, stored beside the record for `icontains`."""
    words: list[str] = []
    for part in parts:
        if not part:
            continue
        text = part.strip().lower()
        words.append(text)
        if any("\u4e00" <= ch <= "\u9fff" for ch in text):
            words.append("".join(lazy_pinyin(text)).replace(" ", ""))
            words.append("".join(lazy_pinyin(text, style=Style.FIRST_LETTER)).replace(" ", ""))
    return " ".join(words)


def apply_search(queryset: QuerySet, query: str | None, field: str = "search_text") -> QuerySet:
    """Keeps rows whose search key holds every word of the query."""
    if not query:
        return queryset
    condition = Q()
    for word in query.lower().split():
        condition &= Q(**{f"{field}__contains": word})
    return queryset.filter(condition)
