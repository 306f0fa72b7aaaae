"""``stepgen schema``: the JSON Schema of the problem format (SPEC §1), for editors."""
from __future__ import annotations

_SHAPE = {"type": "array", "maxItems": 2,
          "items": {"oneOf": [{"type": "string"}, {"type": "integer", "minimum": 1}]},
          "description": "[] a scalar, [D] a column vector, [M, N] a matrix; a dim is a declared dim, a positive integer or a product of them (M*N)"}

_SYMBOL = {
    "oneOf": [
        {"const": "dim", "description": "a dimension: a positive integer symbol"},
        {"const": "scalar", "description": "a real scalar"},
        _SHAPE,
        {"type": "object", "additionalProperties": False,
         "properties": {
             "kind": {"enum": ["dim", "scalar"]},
             "shape": _SHAPE,
             "assume": {"type": "array", "items": {"enum": ["symmetric", "positive_definite", "diagonal",
                                                           "orthogonal", "invertible", "positive"]}},
             "latex": {"type": "string", "description": "LaTeX for the symbol (math commands from the README's list)"},
             "function": {"type": "boolean", "description": "an abstract function"},
             "args": {"type": "array", "items": _SHAPE, "description": "the shapes of its arguments"},
         }},
    ]
}

_FIELDS = {
    "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]*$", "description": "names the output files"},
    "title": {"type": "string"},
    "source": {"type": "string"},
    "statement": {"type": "string", "description": "Markdown with $...$ math"},
    "hint": {"type": "string"},
    "symbols": {"type": "object", "additionalProperties": _SYMBOL},
    "define": {"type": "object", "additionalProperties": {"type": ["string", "number"]},
               "description": "name: expression, the function first"},
    "find": {"oneOf": [{"type": "string", "pattern": "^d2?[A-Za-z][A-Za-z0-9_]*/d[A-Za-z][A-Za-z0-9_]*2?$"},
                       {"type": "array", "items": {"type": "string"}}]},
    "method": {"enum": ["chain_rule", "componentwise", "direct"]},
    "layout": {"enum": ["numerator", "denominator"]},
    "expand_product": {"type": "boolean"},
    "answer": {"oneOf": [{"type": ["string", "number"], "description": "the answer when there is one find"},
                         {"type": "object", "additionalProperties": {"type": ["string", "number"]},
                          "description": "find: expression, e.g. df/dx: 2 * x.T"}],
               "description": "the instructor's answer as the textbook states it; checked against the derivation"},
    "keep": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
             "description": "define names kept in the result (\"where p = ...\") instead of substituted back"},
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "stepgen problem",
    "type": "object",
    "additionalProperties": False,
    "properties": dict(_FIELDS, parts={
        "type": "array",
        "items": {"type": "object", "additionalProperties": False, "properties": _FIELDS},
    }),
}
