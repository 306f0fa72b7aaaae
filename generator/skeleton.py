"""``stepgen new``: a commented problem file to start from; it passes ``check`` and builds."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import StepgenError
from .files import create_new

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


def write_skeleton(path: Path, pid: str) -> None:
    """Create ``path`` with the skeleton; never over an existing file or through a link (even a
    dangling one, which would create its target somewhere else)."""
    if os.path.lexists(path):
        kind = "is a symbolic link" if path.is_symlink() else "exists"
        raise StepgenError(f"{path} {kind}; not overwritten")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        create_new(path, skeleton(pid).encode("utf-8"))
    except FileExistsError:
        raise StepgenError(f"{path} exists; not overwritten") from None
    except OSError as exc:
        raise StepgenError(f"cannot write {path}: {exc.strerror or exc}") from None
