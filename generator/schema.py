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
                                                           "orthogonal", "invertible", "positive", "one_hot"]},
                        "description": "what the symbol is known to be; one_hot: a label vector of the 1-of-K coding (sum 1)"},
             "latex": {"type": "string", "description": "LaTeX for the symbol (math commands from the README's list)"},
             "function": {"type": "boolean", "description": "an abstract function"},
             "args": {"type": "array", "items": _SHAPE, "description": "the shapes of its arguments"},
         }},
    ]
}

# an expression; in YAML, [a, b] unquoted is a list of texts: the list literal, a column vector
_EXPRESSION = {"oneOf": [{"type": ["string", "number"]},
                         {"type": "array", "items": {"type": ["string", "number"]}, "minItems": 1, "maxItems": 20,
                          "description": "a list literal [a, b]: a column vector of scalars"}]}

_FIELDS = {
    "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]*$", "description": "names the output files"},
    "title": {"type": "string"},
    "source": {"type": "string"},
    "statement": {"type": "string", "description": "Markdown with $...$ math"},
    "hint": {"type": "string"},
    "symbols": {"type": "object", "additionalProperties": _SYMBOL},
    "define": {"type": "object",
               "additionalProperties": _EXPRESSION,
               "description": "name: expression, the function first. A declared dim is a number (1/N * sum(v)); "
                              "pi and e are constants unless the problem declares those names; [a, b] is a column "
                              "vector"},
    "find": {"oneOf": [{"type": "string", "pattern": "^d2?[A-Za-z{][A-Za-z0-9_{}]*/d[A-Za-z{][A-Za-z0-9_{}]*2?$"},
                       {"type": "array", "items": {"type": "string"}}]},
    "method": {"enum": ["chain_rule", "componentwise", "direct"]},
    "layout": {"enum": ["numerator", "denominator"]},
    "expand_product": {"type": "boolean"},
    "answer": {"oneOf": [dict(_EXPRESSION, description="the answer when there is one find"),
                         {"type": "object", "additionalProperties": _EXPRESSION,
                          "description": "find: expression, e.g. df/dx: 2 * x.T"}],
               "description": "the instructor's answer as the textbook states it; checked against the derivation"},
    "keep": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
             "description": "define names kept in the result (\"where p = ...\") instead of substituted back"},
}

_VARY = {
    "type": "object", "maxProperties": 10, "minProperties": 1,
    "propertyNames": {"pattern": "^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?$"},
    "additionalProperties": {
        "type": "array", "minItems": 1, "maxItems": 50, "uniqueItems": True,
        "items": {"oneOf": [{"type": "number"},
                            {"type": "string", "pattern": "^(-?(\\d+(\\.\\d+)?|\\.\\d+)(/\\d+)?"
                                                          "|[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?)$",
                             "maxLength": 40}]},
    },
    "description": "placeholders {name} written in define, find, symbols, statement, hint or title, each with "
                   "its choices: a number (2, -1/2) or a name (a function like exp, a symbol like x); "
                   "build --variants N --seed S or --roster CSV resolves them, a plain build uses the first",
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "stepgen problem",
    "type": "object",
    "additionalProperties": False,
    "properties": dict(_FIELDS, vary=_VARY, parts={
        "type": "array",
        "items": {"type": "object", "additionalProperties": False, "properties": _FIELDS},
    }),
}
