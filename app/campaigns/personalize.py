"""Personalized texts: `{column}` merge fields filled from a CSV row, checked before anything is sent.

A template names a column of the file in braces: `Hi {first name}, your polling place is
{place}.` Column names match case-insensitively, ignoring surrounding spaces. `{{` and `}}` are a
literal brace. A row whose named field is empty is never sent a text with a blank in it: it is a
row issue ("no value for {place}") and that row gets no message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from app.validation import ValidationError

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class Template:
    """A parsed template: literal parts and field names alternating (`parts[0]`, `fields[0]`,
    `parts[1]`, ...), the fields as the row's column names."""

    text: str
    parts: tuple[str, ...]
    fields: tuple[str, ...]

    @property
    def has_fields(self) -> bool:
        return bool(self.fields)

    def missing(self, row: dict[str, str]) -> str | None:
        """The first field this row has no value for, or None."""
        for name in self.fields:
            value = row.get(name)
            if value is None or not str(value).strip():
                return name
        return None

    def render(self, row: dict[str, str]) -> str:
        if not self.fields:
            return self.parts[0]
        out = [self.parts[0]]
        for name, part in zip(self.fields, self.parts[1:], strict=True):
            out.append(str(row[name]).strip())
            out.append(part)
        return "".join(out)

    @property
    def names(self) -> tuple[str, ...]:
        """Each field once, in order of first use: the values `render_values` takes."""
        return tuple(dict.fromkeys(self.fields))

    @cached_property
    def _pattern(self) -> str:
        """The template as a `str.format` pattern over `names` by position."""
        position = {name: i for i, name in enumerate(self.names)}
        out = [self.parts[0].replace("{", "{{").replace("}", "}}")]
        for name, part in zip(self.fields, self.parts[1:], strict=True):
            out.append(f"{{{position[name]}}}")
            out.append(part.replace("{", "{{").replace("}", "}}"))
        return "".join(out)

    def render_values(self, values: Sequence[object]) -> str:
        """`render` for the values of `names`, in that order: the start renders many rows."""
        return self._pattern.format(*[str(v).strip() for v in values])


def parse_template(text: str, columns: Iterable[str], *, field: str = "first_message") -> Template:
    """Parse `text` against the file's columns; ValidationError names an unknown or malformed
    field, with the columns it could have meant."""
    by_key = {_key(c): c for c in columns}
    parts: list[str] = []
    fields: list[str] = []
    # Walk the text once, keeping literal runs and fields apart.
    position = 0
    buffer: list[str] = []
    for match in _TOKEN.finditer(text):
        buffer.append(text[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            buffer.append(token[0])
            continue
        if token in ("{", "}"):
            raise ValidationError(
                "A brace without its pair: write a merge field as {column}, or {{ for a brace.",
                field=field,
            )
        name = match.group(1)
        column = by_key.get(_key(name))
        if column is None:
            known = ", ".join("{" + c + "}" for c in list(by_key.values())[:12]) or "none"
            raise ValidationError(
                f"{{{name.strip()[:40]}}} is not a column of the file (its columns: {known}).",
                field=field,
            )
        parts.append("".join(buffer))
        buffer = []
        fields.append(column)
    buffer.append(text[position:])
    parts.append("".join(buffer))
    return Template(text=text, parts=tuple(parts), fields=tuple(fields))
