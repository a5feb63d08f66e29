"""Safe parsing of the target function f(x) typed by the user.

The text is parsed with :mod:`ast`, and only a whitelist of nodes is accepted.
These are numbers, the variable ``x``, the constants ``pi`` and ``e``, the
operators ``+ - * / ** %`` and calls to a fixed set of NumPy functions, also
written ``np.cos`` as in the handout. The accepted tree is turned into nested Python
closures over NumPy functions, so no user text is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from keraslab_cli.core.errors import InvalidValue
from keraslab_cli.core.i18n import _

MAX_LENGTH = 500
MAX_NODES = 300
MAX_DEPTH = 40

UNARY_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "exp": np.exp, "log": np.log, "log2": np.log2, "log10": np.log10,
    "sqrt": np.sqrt, "abs": np.abs, "sign": np.sign,
    "floor": np.floor, "ceil": np.ceil,
}
BINARY_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "minimum": np.minimum, "maximum": np.maximum, "arctan2": np.arctan2,
}
CONSTANTS = {"pi": np.pi, "e": np.e}
BINARY_OPERATORS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow, ast.Mod: operator.mod,
}
UNARY_OPERATORS = {ast.UAdd: operator.pos, ast.USub: operator.neg}
NUMPY_PREFIXES = ("np", "numpy")

Node = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Expression:
    """A parsed function of x, evaluated with NumPy on float64 arrays."""

    source: str
    _evaluate: Node

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"):
            y = self._evaluate(x)
        return np.broadcast_to(np.asarray(y, dtype=np.float64), x.shape).copy()


def allowed_names() -> str:
    """Return the accepted function names, for help and error messages."""
    return ", ".join(sorted(UNARY_FUNCTIONS) + sorted(BINARY_FUNCTIONS))


def parse_expression(source: str, field: str = "function") -> Expression:
    """Parse the text of f(x) into an :class:`Expression`.

    Args:
        source: the expression, for example ``cos(2*x) + x*sin(3*x)``.
        field: the parameter named in errors, default ``function``.

    Raises:
        InvalidValue: the text is not a valid expression in x.
    """
    if not isinstance(source, str) or not source.strip():
        raise InvalidValue(field, source, _("an expression in x, for example 'cos(2*x) + sqrt(x)'"))
    if len(source) > MAX_LENGTH:
        raise InvalidValue(field, source[:40] + "…", _("an expression of at most {limit} characters").format(limit=MAX_LENGTH))
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise InvalidValue(field, source, _("a valid expression in x (check the brackets and operators; powers are written **)")) from None

    if sum(1 for _node in ast.walk(tree)) > MAX_NODES:
        raise InvalidValue(field, source, _("an expression of at most {limit} terms").format(limit=MAX_NODES))
    compiler = _Compiler(source, field)
    return Expression(source=source.strip(), _evaluate=compiler.compile(tree.body, depth=0))


class _Compiler:
    """Compiler of a whitelisted AST into closures; every other node is rejected."""

    def __init__(self, source: str, field: str) -> None:
        self.source = source
        self.field = field

    def reject(self, reason: str) -> InvalidValue:
        return InvalidValue(self.field, self.source, reason)

    def compile(self, node: ast.AST, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.reject(_("an expression nested at most {limit} levels deep").format(limit=MAX_DEPTH))
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.BinOp):
            return self.binary(node, depth)
        if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY_OPERATORS:
            operand = self.compile(node.operand, depth + 1)
            function = UNARY_OPERATORS[type(node.op)]
            return lambda x: function(operand(x))
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise self.reject(_("only numbers, x, pi, e, + - * / ** % and the functions {names}").format(names=allowed_names()))

    def constant(self, node: ast.Constant) -> Node:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.reject(_("numbers only, found {value!r}").format(value=value))
        # float64 keeps huge literals and powers finite in time (they become inf)
        # instead of letting Python build giant integers.
        number = np.float64(float(value)) if abs(value) < 1e308 else np.float64(np.inf)
        return lambda x: number

    def name(self, identifier: str) -> Node:
        if identifier == "x":
            return lambda x: x
        if identifier in CONSTANTS:
            number = np.float64(CONSTANTS[identifier])
            return lambda x: number
        raise self.reject(_("the variable x and the constants pi and e; unknown name '{name}'").format(name=identifier))

    def binary(self, node: ast.BinOp, depth: int) -> Node:
        if isinstance(node.op, ast.BitXor):
            raise self.reject(_("powers written with ** (x**2), not ^"))
        function = BINARY_OPERATORS.get(type(node.op))
        if function is None:
            raise self.reject(_("only the operators + - * / ** %"))
        left = self.compile(node.left, depth + 1)
        right = self.compile(node.right, depth + 1)
        return lambda x: function(left(x), right(x))

    def call(self, node: ast.Call, depth: int) -> Node:
        name = self.function_name(node.func)
        if node.keywords:
            raise self.reject(_("functions called with positional arguments only"))
        arguments = [self.compile(argument, depth + 1) for argument in node.args]
        if name in UNARY_FUNCTIONS and len(arguments) == 1:
            unary = UNARY_FUNCTIONS[name]
            (argument,) = arguments
            return lambda x: unary(argument(x))
        if name in BINARY_FUNCTIONS and len(arguments) == 2:
            binary = BINARY_FUNCTIONS[name]
            first, second = arguments
            return lambda x: binary(first(x), second(x))
        expected = 1 if name in UNARY_FUNCTIONS else 2
        raise self.reject(_("{name}() takes {count} argument(s), found {found}").format(name=name, count=expected, found=len(arguments)))

    def function_name(self, node: ast.AST) -> str:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in NUMPY_PREFIXES:
            name = node.attr
        elif isinstance(node, ast.Name):
            name = node.id
        else:
            raise self.reject(_("calls to the functions {names} only").format(names=allowed_names()))
        if name not in UNARY_FUNCTIONS and name not in BINARY_FUNCTIONS:
            raise self.reject(_("a known function ({names}); unknown function '{name}'").format(names=allowed_names(), name=name))
        return name
