"""The safe evaluator: what an expression read from a file may contain, and what it may not."""

import numpy as np
import pytest
from brian2 import mV, ms

from neurocode.cards.expressions import ExpressionError, evaluate, parse_expression
from neurocode.torch.codegen import TranslationError, check_code, compile_block, make_namespace


@pytest.mark.parametrize("text, expected", [
    ("2*tau + 1*ms", 21 * ms),
    ("-65*mV + 3*mV", -62 * mV),
    ("exp(0) + log(1) + sqrt(4) + abs(-1) + clip(5, 0, 2)", 6.0),
    ("2**3 % 5", 3.0),
    ("1 < 2 and not 3 < 2", True),
    ("1 < 2 < 3 or False", True),
    ("pi > 3", True),
])
def test_allowed_grammar_evaluates(text, expected):
    assert evaluate(text, {"tau": 10 * ms, "ms": ms, "mV": mV}) == expected


def test_arrays_and_random_numbers_with_a_generator():
    v = evaluate("v > 1 and not w", {"v": np.array([0.0, 2.0]), "w": False})
    assert v.tolist() == [False, True]
    x = evaluate("0.5 + 0*rand()", {}, rng=np.random.default_rng(0), size=3)
    assert x.shape == (3,)
    with pytest.raises(ExpressionError, match=r"'rand\(\)': random numbers \(rand\(\)\) are not allowed here"):
        evaluate("rand()", {})


@pytest.mark.parametrize("text, problem", [
    ("().__class__.__base__.__subclasses__()", r"attribute access \('.__subclasses__'\) is not allowed"),
    ("__import__('os').system('true')", r"attribute access \('.system'\) is not allowed"),
    ("__import__('os')", r"the function '__import__' is not allowed"),
    ("__builtins__", r"the name '__builtins__' is not allowed"),
    ("open('x')", r"the function 'open' is not allowed; allowed: abs, arccos"),
    ("x[0]", r"indexing with \[...\] is not allowed"),
    ("[i for i in y]", "a comprehension is not allowed"),
    ("(lambda: 1)()", "only calls of named functions are allowed"),
    ("lambda: 1", "lambda is not allowed"),
    ("f'{x}'", "an f-string is not allowed"),
    ("'abc'", "the constant 'abc' is not allowed; only numbers are"),
    ("exp(x=1)", r"keyword arguments in 'exp\(...\)' are not allowed"),
    ("exp(*y)", r"starred arguments in 'exp\(...\)' are not allowed"),
    ("x if y else 1", r"'... if ... else ...' is not allowed"),
    ("(x := 1)", r"assignment \(:=\) is not allowed"),
    ("x | y", "the operator BitOr is not allowed"),
    ("exp(1, 2)", r"'exp' takes 1 argument\(s\), got 2"),
    ("1 +", r"not an expression \(invalid syntax\)"),
    ("(" * 300 + "1" + ")" * 300, "not an expression"),
    ("1" * 3000, "longer than 2000 is not allowed"),
    ("9**9**9**9", r"a value too large for a float \(overflow\)"),
    ("1/0", "float division by zero"),
    ("unknown_name + 1", r"unknown name\(s\) \['unknown_name'\]"),
])
def test_everything_else_is_refused_naming_the_expression_and_construct(text, problem):
    with pytest.raises(ExpressionError, match=problem):
        evaluate(text, {"x": 1.0, "y": 2.0})


def test_parse_reports_names_and_calls():
    parsed = parse_expression("v_rest + 2*mV*randn()", {"v_rest", "mV"})
    assert parsed.names == {"v_rest", "mV"} and parsed.calls == {"randn"} and parsed.random


@pytest.mark.parametrize("expr, problem", [
    ("().__class__.__base__.__subclasses__()", "uses attribute access"),
    ("_nc_not.__globals__", "uses attribute access"),
    ("__builtins__", "uses the reserved name '__builtins__'"),
    ("open('x')", "function 'open' has no torch translation"),
    ("'text'", "only numbers are allowed"),
    ("x[0]", "uses the construct Subscript"),
])
def test_codegen_refuses_anything_but_names_numbers_operators_and_known_calls(expr, problem):
    with pytest.raises(TranslationError, match=problem):
        check_code(expr, "card 'x', neuron.reset")
    with pytest.raises(TranslationError, match=rf"card 'x', neuron.reset: in 'v = .*{problem}"):
        compile_block("reset", [("v", "=", expr)], ["v", "x"], ["v"], make_namespace(None), "card 'x', neuron.reset")


def test_codegen_refuses_generated_names_that_are_dunders():
    with pytest.raises(TranslationError, match=r"\['__class__'\] cannot be variable names"):
        compile_block("f", [("__class__", "=", "v")], ["v"], ["v"], make_namespace(None), "card 'x'")
