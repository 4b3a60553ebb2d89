"""A small JSON Schema checker for request bodies and query parameters.

It understands the part of JSON Schema (2020-12, as OpenAPI 3.1 uses it) that the API's
schema components are written in: ``$ref`` to ``#/components/schemas/...``, ``type`` (a
name or a list of names), ``properties``, ``required``, ``additionalProperties``,
``enum``, ``const``, ``minimum``/``maximum``, ``minLength``/``maxLength``, ``pattern``,
``items``, ``minItems``/``maxItems``, ``anyOf``/``oneOf`` and the ``date-time`` format.
Anything else in a schema is documentation and is ignored. The first problem found raises
:class:`ValidationError` naming the field (``rules.keep_hot[2]``), which the API answers
with a 400. The tests check the same components with the ``jsonschema`` package, so the
document and this checker cannot quietly disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from gateway.errors import InvalidArgument

_REF_PREFIX = "#/components/schemas/"


class ValidationError(InvalidArgument):
    """{0}"""

    code = "InvalidRequest"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        #: Where the problem is: ``body.name``, ``query.limit``...
        self.field = field


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _type_ok(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    return True


def _describe(types: list[str]) -> str:
    names = {"null": "null", "boolean": "true or false", "integer": "an integer",
             "number": "a number", "string": "a string", "array": "a list",
             "object": "an object"}
    return " or ".join(names.get(t, t) for t in types)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class Validator:
    """Checks values against schemas that may refer to ``components`` by ``$ref``."""

    def __init__(self, components: Mapping[str, Any]) -> None:
        self.components = components

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """The schema a ``$ref`` points to (or the schema itself)."""
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith(_REF_PREFIX):
                raise ValueError(f"unsupported $ref {ref!r}")
            schema = self.components[ref[len(_REF_PREFIX) :]]
        return schema

    def validate(self, value: Any, schema: Mapping[str, Any], path: str = "") -> None:
        """Raise :class:`ValidationError` for the first problem of ``value``."""
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                self._alternatives(value, schema[key], path)
        if "const" in schema and value != schema["const"]:
            raise ValidationError(path, f"must be {schema['const']!r}")
        if "enum" in schema and value not in schema["enum"]:
            choices = ", ".join("null" if v is None else str(v) for v in schema["enum"])
            raise ValidationError(path, f"must be one of {choices}")
        types = schema.get("type")
        if types is not None:
            names = [types] if isinstance(types, str) else list(types)
            if not any(_type_ok(value, name) for name in names):
                raise ValidationError(path, f"expected {_describe(names)}")
        if isinstance(value, str):
            self._string(value, schema, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._number(value, schema, path)
        elif isinstance(value, list):
            self._array(value, schema, path)
        elif isinstance(value, dict):
            self._object(value, schema, path)

    def _alternatives(self, value: Any, options: list[Any], path: str) -> None:
        problems: list[ValidationError] = []
        for option in options:
            try:
                self.validate(value, option, path)
            except ValidationError as error:
                problems.append(error)
            else:
                return
        # The most specific complaint is usually the one that went deepest.
        best = max(problems, key=lambda e: len(e.field))
        raise best

    def _string(self, value: str, schema: Mapping[str, Any], path: str) -> None:
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise ValidationError(path, f"must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ValidationError(path, f"must have at most {schema['maxLength']} characters")
        if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
            raise ValidationError(path, f"must match {schema['pattern']}")
        if schema.get("format") == "date-time":
            parse_datetime(value, path)

    def _number(self, value: float, schema: Mapping[str, Any], path: str) -> None:
        if "minimum" in schema and value < schema["minimum"]:
            raise ValidationError(path, f"must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise ValidationError(path, f"must be at most {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise ValidationError(path, f"must be more than {schema['exclusiveMinimum']}")

    def _array(self, value: list[Any], schema: Mapping[str, Any], path: str) -> None:
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise ValidationError(path, f"needs at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise ValidationError(path, f"takes at most {schema['maxItems']} items")
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                self.validate(item, items, f"{path}[{index}]")

    def _object(self, value: dict[str, Any], schema: Mapping[str, Any], path: str) -> None:
        properties: Mapping[str, Any] = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                raise ValidationError(_join(path, name), "is required")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                self.validate(item, properties[name], _join(path, name))
            elif extra is False:
                known = ", ".join(properties) or "none"
                raise ValidationError(_join(path, name), f"is not a known field (known: {known})")
            elif isinstance(extra, Mapping):
                self.validate(item, extra, _join(path, name))


def parse_datetime(text: str, field: str) -> datetime:
    """An RFC 3339 date-time (``2026-01-02T03:04:05Z``); naive values are taken as UTC."""
    from datetime import UTC

    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    if "T" not in candidate and "t" not in candidate:
        raise ValidationError(field, "expected a date-time such as 2026-01-02T03:04:05Z")
    try:
        value = datetime.fromisoformat(candidate)
    except ValueError:
        raise ValidationError(field, "expected a date-time such as 2026-01-02T03:04:05Z") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def coerce_query(raw: str, schema: Mapping[str, Any], field: str) -> Any:
    """A query parameter's text in the type its schema says (before validation)."""
    types = schema.get("type", "string")
    names = [types] if isinstance(types, str) else list(types)
    if "integer" in names:
        text = raw.strip()
        if re.fullmatch(r"[+-]?\d{1,19}", text):
            return int(text)
        raise ValidationError(field, "expected an integer")
    if "boolean" in names:
        lowered = raw.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValidationError(field, "expected true or false")
    return raw
