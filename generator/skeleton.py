"""``stepgen new``: a commented problem file to start from; it passes ``check`` and builds."""
from __future__ import annotations

TEMPLATE = """\
# yaml-language-server: $schema=https://example.invalid/stepgen-problem.schema.json
# A stepgen problem. `stepgen check {id}.yaml` validates it, `stepgen build {id}.yaml` solves it.
# Replace the schema address above with the path of the file `stepgen schema > schema.json` writes.

id: {id}                       # names the output files: {id}.md, {id}.tex, {id}.pdf, {id}.json
title: Gradient of a quadratic form
source: write where the problem comes from
statement: >-
  Compute $\\frac{{df}}{{d\\mathbf{{x}}}}$ using the chain rule, and give the dimensions of
  every partial derivative.
# hint: an optional hint, shown under the statement

symbols:                       # every name the expressions use
  D: dim                       # a dimension (a positive integer)
  x: [D]                       # a column vector in R^D
  b: [D]
  A: {{shape: [D, D], assume: [symmetric]}}   # assumptions are used when simplifying

define:                        # the function first, then what it uses
  f: z.T @ A @ z
  z: x - b

find: df/dx                    # or a list: [df/dx, df/db]; d2f/dx2 for the Hessian
# method: chain_rule           # chain_rule | componentwise | direct
# layout: numerator            # numerator (the gradient is a row) | denominator
# expand_product: true         # false: leave the product of the partials unevaluated
# answer: 2 * (x - b).T @ A    # the textbook's form of the result, checked and shown ({{df/dx: ...}} for several finds)
# parts:                       # sub-problems: each may set any field above and inherits the rest
#   - id: a
#     statement: ...
"""


def skeleton(pid: str) -> str:
    return TEMPLATE.format(id=pid)
