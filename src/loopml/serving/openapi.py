"""The OpenAPI request body of ``/predict``, written from the served model's input schema.

Clients and API tools (Swagger UI at ``/docs``, code generators, schemathesis) see the real
columns: their JSON types, which may be null, and the allowed values of a category column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.serving.served import ServedModel

_TYPES: dict[str, dict[str, Any]] = {
    "integer": {"type": "integer"},
    "float": {"type": "number"},
    "boolean": {"type": "boolean"},
    "string": {"type": "string"},
    "category": {"type": "string"},
    "datetime": {"type": "string", "format": "date-time"},
}


def record_schema(served: ServedModel) -> dict[str, Any]:
    """The JSON Schema of one record: an object with one property per input column."""
    properties: dict[str, Any] = {}
    assert served.schema is not None
    for spec in served.schema.inputs:
        prop: dict[str, Any] = dict(_TYPES[spec.kind])
        if spec.categories is not None:
            prop = {"enum": list(spec.categories)}
        if spec.nullable:
            prop = {"anyOf": [prop, {"type": "null"}]}
        properties[spec.name] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
    }


def request_body(served: ServedModel) -> dict[str, Any]:
    record = record_schema(served)
    records = {"type": "array", "items": record, "minItems": 1}
    names = list(record["properties"])
    example = {name: _example(p) for name, p in record["properties"].items()}
    return {
        "required": True,
        "description": (
            f"Rows for {served.label}: JSON records (or columns and data), CSV with a header "
            "line, or a Parquet file."
        ),
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        records,
                        {
                            "type": "object",
                            "properties": {"records": records},
                            "required": ["records"],
                            "additionalProperties": False,
                        },
                        {
                            "type": "object",
                            "properties": {
                                "columns": {"type": "array", "items": {"enum": names}},
                                "data": {"type": "array", "items": {"type": "array"}},
                            },
                            "required": ["columns", "data"],
                            "additionalProperties": False,
                        },
                    ]
                },
                "example": {"records": [example]},
            },
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    }


def _example(prop: dict[str, Any]) -> Any:
    if "anyOf" in prop:
        prop = prop["anyOf"][0]
    if "enum" in prop:
        return prop["enum"][0] if prop["enum"] else None
    return {"integer": 1, "number": 1.5, "boolean": True}.get(prop.get("type", ""), "text")
