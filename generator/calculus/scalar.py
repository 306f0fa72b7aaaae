"""Derivatives of the elementwise functions of one variable: d/du f(u) = f'(u).

Each entry maps a function name to (f'(u) as an expression in u, how a
textbook writes the rule).  ``tests/test_rules.py`` checks every entry against
SymPy's ``diff``.  To add a function: add it here, to ``expr.ELEMENTWISE``, to
the evaluator in ``verify.py`` and to the printers.
"""
from __future__ import annotations

from .. import expr as ex
from ..expr import Expr


def _half(e: Expr) -> Expr:
    return ex.mul(ex.num(ex.Fraction(1, 2)), e)


DERIVATIVES = {
    "exp": (lambda u: ex.fn("exp", u), "d/du exp(u) = exp(u)"),
    "log": (lambda u: ex.power(u, ex.num(-1)), "d/du log(u) = 1/u"),
    "sin": (lambda u: ex.fn("cos", u), "d/du sin(u) = cos(u)"),
    "cos": (lambda u: ex.neg(ex.fn("sin", u)), "d/du cos(u) = -sin(u)"),
    "tan": (lambda u: ex.add(ex.ONE, ex.power(ex.fn("tan", u), ex.num(2))), "d/du tan(u) = 1 + tan(u)^2"),
    "tanh": (lambda u: ex.add(ex.ONE, ex.neg(ex.power(ex.fn("tanh", u), ex.num(2)))), "d/du tanh(u) = 1 - tanh(u)^2"),
    "sigmoid": (lambda u: ex.mul(ex.fn("sigmoid", u), ex.add(ex.ONE, ex.neg(ex.fn("sigmoid", u))))
                if u.shape == () else ex.hadamard(ex.fn("sigmoid", u), ex.add(ex.ONE, ex.neg(ex.fn("sigmoid", u)))),
                "d/du sigmoid(u) = sigmoid(u) (1 - sigmoid(u))"),
    "sqrt": (lambda u: _half(ex.power(ex.fn("sqrt", u), ex.num(-1))), "d/du sqrt(u) = 1/(2 sqrt(u))"),
    "softplus": (lambda u: ex.fn("sigmoid", u), "d/du softplus(u) = sigmoid(u)"),
    "cosh": (lambda u: ex.fn("sinh", u), "d/du cosh(u) = sinh(u)"),
    "sinh": (lambda u: ex.fn("cosh", u), "d/du sinh(u) = cosh(u)"),
    "log1p": (lambda u: ex.power(ex.add(ex.ONE, u), ex.num(-1)), "d/du log1p(u) = 1/(1 + u)"),
    # piecewise: the derivative away from the kink u = 0, with the value 0 chosen at the kink
    # (a subgradient of relu and abs there); the check samples away from kinks (verify.py)
    "relu": (lambda u: ex.fn("step", u), "d/du relu(u) = step(u)"),
    "abs": (lambda u: ex.fn("sign", u), "d/du abs(u) = sign(u)"),
    "step": (lambda u: ex.zero(u.shape), "d/du step(u) = 0 (u != 0)"),
    "sign": (lambda u: ex.zero(u.shape), "d/du sign(u) = 0 (u != 0)"),
}

# What each function is called in a rule's title ("Derivative of the hyperbolic sine").
NAMES = {"exp": "the exponential", "log": "the logarithm", "sin": "the sine", "cos": "the cosine",
         "tan": "the tangent", "tanh": "the hyperbolic tangent", "sigmoid": "the logistic sigmoid",
         "sqrt": "the square root", "softplus": "the softplus", "cosh": "the hyperbolic cosine",
         "sinh": "the hyperbolic sine", "log1p": "log(1 + u)", "relu": "the ReLU", "abs": "the absolute value",
         "step": "the step function", "sign": "the sign function"}

# Where a rule is not a calculus textbook's first page: ReLU(u) = max(0, u), whose derivative is the step
CITES = {"relu": "Parr & Howard §5"}

# How the rule reads in LaTeX, with u the inner variable.
LATEX_RULES = {
    "exp": r"\frac{d}{du} e^{u} = e^{u}",
    "log": r"\frac{d}{du} \log u = \frac{1}{u}",
    "sin": r"\frac{d}{du} \sin u = \cos u",
    "cos": r"\frac{d}{du} \cos u = -\sin u",
    "tan": r"\frac{d}{du} \tan u = 1 + \tan^{2} u",
    "tanh": r"\frac{d}{du} \tanh u = 1 - \tanh^{2} u",
    "sigmoid": r"\frac{d}{du} \sigma(u) = \sigma(u)\,(1 - \sigma(u))",
    "sqrt": r"\frac{d}{du} \sqrt{u} = \frac{1}{2\sqrt{u}}",
    "softplus": r"\frac{d}{du} \log(1 + e^{u}) = \sigma(u)",
    "cosh": r"\frac{d}{du} \cosh u = \sinh u",
    "sinh": r"\frac{d}{du} \sinh u = \cosh u",
    "log1p": r"\frac{d}{du} \log(1 + u) = \frac{1}{1 + u}",
    "relu": r"\frac{d}{du} \max(0, u) = \mathbb{1}[u > 0]",
    "abs": r"\frac{d}{du} \lvert u \rvert = \operatorname{sign}(u)",
    "step": r"\frac{d}{du} \mathbb{1}[u > 0] = 0 \quad (u \neq 0)",
    "sign": r"\frac{d}{du} \operatorname{sign}(u) = 0 \quad (u \neq 0)",
}


def derivative(name: str, u: Expr) -> Expr:
    """f'(u), elementwise when u is an array."""
    return DERIVATIVES[name][0](u)
