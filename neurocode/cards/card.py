"""Model cards: one neuron model and its synapse, as Brian2 equations in a TOML file.

A card is read once into a :class:`ModelCard`; every check happens here, so that the
Brian2 builder and the torch dynamics can trust what they get. Every problem raises
:class:`~neurocode.errors.ModelCardError` naming the card, the field and the problem.
The format is documented in ``docs/model-cards.md``.

>>> card = load_card("lif")
>>> card.name, card.method, sorted(card.state_variables)
('lif', 'exact', ['I_syn', 'v'])
>>> float(card.defaults["tau_m"])
0.02
>>> card.heterogeneity["tau_m"].kind
'gamma'
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from brian2 import Equations
from brian2.core.functions import DEFAULT_CONSTANTS, DEFAULT_FUNCTIONS
from brian2.core.namespace import DEFAULT_UNITS
from brian2.core.variables import Constant, Variable
from brian2.equations.equations import DIFFERENTIAL_EQUATION, SUBEXPRESSION
from brian2.equations.unitcheck import check_dimensions, check_units_statements
from brian2.parsing.expressions import parse_expression_dimensions
from brian2 import second
from brian2.units.fundamentalunits import DIMENSIONLESS, DimensionMismatchError
from brian2.utils.stringtools import get_identifiers

from neurocode.errors import ModelCardError
from neurocode.cards.expressions import CONSTANTS, ExpressionError, parse_expression
from neurocode.cards.heterogeneity import Distribution, DistributionError
from neurocode.units import UnitParseError, dimension_name, parse_quantity

#: Folder of the cards shipped with neurocode (``equations/`` at the repository root).
CARD_DIR = Path(__file__).resolve().parents[2] / "equations"

TOP_KEYS = {"name", "description", "kind", "references", "neuron", "parameters",
            "heterogeneity", "synapse"}
NEURON_KEYS = {"equations", "threshold", "reset", "refractory", "method", "initial", "spike_time"}
SYNAPSE_KEYS = {"model", "on_pre", "weight", "delay"}
METHODS = {"exact", "linear", "euler", "rk2", "rk4", "exponential_euler", "heun", "milstein"}
KINDS = {"spiking", "rate"}
#: Names Brian2 provides inside a group's code.
IMPLICIT = {"t": second.dim, "dt": second.dim, "i": DIMENSIONLESS, "N": DIMENSIONLESS,
            "lastspike": second.dim, "not_refractory": DIMENSIONLESS}
_MISSING_UNIT = re.compile(r"^\s*(d\w+/dt|\w+)\s*=\s*[^:]+$")


@dataclass(frozen=True)
class ModelCard:
    """A validated neuron + synapse model.

    Attributes
    ----------
    name : str
        Card name (file stem unless the card sets ``name``).
    source : str
        Path of the TOML file, or ``"<string>"``.
    text : str
        The card's TOML text (its hash identifies the card in a NetworkSpec).
    kind : str
        ``"spiking"`` or ``"rate"`` (no threshold).
    equations : brian2.Equations
        The model's equations as written, without the parameter declarations.
    threshold, reset, refractory : str or None
        Brian2 code strings (``refractory`` may be a quantity string such as ``"2*ms"``).
    method : str
        Brian2 state-updater name; the torch dynamics use the same one.
    defaults : dict of str -> brian2.Quantity
        Parameter defaults. Every parameter is a per-neuron ``(constant)`` variable.
    heterogeneity : dict of str -> Distribution
        Per-neuron distributions for some parameters (SI units).
    initial : dict of str -> str
        Initial values of state variables, as Brian2 expressions.
    synapse_model, on_pre : str
        Brian2 ``Synapses`` model and ``on_pre`` code.
    weight : str
        Name of the synaptic weight variable in ``synapse_model``.
    spike_time : str or None
        A variable or subexpression (unit second) that holds, when the threshold is tested,
        the spike's exact time within its step (e.g. the interpolated threshold crossing).
        Spike monitors then report it instead of the step's time.
    origin : str or None
        Absolute path of the TOML file the text was read from; a NetworkSpec keeps it, so
        that a card edited after the spec was saved can be reported.
    """

    name: str
    source: str
    text: str
    kind: str
    equations: Equations
    threshold: str | None
    reset: str | None
    refractory: str | None
    method: str
    defaults: dict
    heterogeneity: dict
    initial: dict
    synapse_model: str
    on_pre: str
    weight: str
    spike_time: str | None = None
    origin: str | None = None
    description: str = ""
    references: tuple = field(default_factory=tuple)

    def __reduce__(self):
        """Pickle a card as its text (Dask workers get it that way): a dimensionless Brian2
        quantity does not survive pickling as a quantity."""
        return card_from_string, (self.text, self.name, self.source)

    # -- derived views -------------------------------------------------------------------
    @property
    def state_variables(self):
        """Names of the differential-equation variables."""
        return [eq.varname for eq in self.equations.ordered if eq.type == DIFFERENTIAL_EQUATION]

    @property
    def parameters(self):
        """Names of the per-neuron parameters, in card order."""
        return list(self.defaults)

    @property
    def full_equations(self):
        """Equations with every parameter declared as a per-neuron ``(constant)``."""
        return self.equations + Equations(parameter_declarations(self.defaults))

    @property
    def weight_dim(self):
        """Physical dimension of the synaptic weight."""
        return Equations(self.synapse_model)[self.weight].dim

    @property
    def sha256(self):
        """Hash of the card text; a NetworkSpec records it to detect changed cards."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def lower_bound(self, name):
        """``(low, inclusive)`` that every value of parameter ``name`` must exceed, or ``None``.

        A parameter with units of second is a time constant (> 0 s), except the one that
        ``refractory`` names, which is a duration (>= 0 s).
        """
        if self.defaults[name].dim is not second.dim:
            return None
        return (0.0, name == self.refractory)

    def dimension(self, name):
        """Dimension of a state variable, subexpression or parameter."""
        if name in self.defaults:
            return self.defaults[name].dim
        return self.equations[name].dim

    def summary(self):
        """A few lines describing the card (used by ``neurocode models show``)."""
        lines = [f"{self.name} ({self.kind}, method {self.method}): {self.description}".rstrip(": "),
                 "equations:"]
        lines += ["    " + line for line in str(self.equations).strip().splitlines()]
        for key in ("threshold", "reset", "refractory"):
            if getattr(self, key):
                lines.append(f"{key}: {getattr(self, key)}")
        lines.append("parameters:")
        for name, value in self.defaults.items():
            het = self.heterogeneity.get(name)
            extra = ""
            if het is not None:
                extra = "  ~ " + het.kind + "(" + ", ".join(
                    f"{k}={v:g}" for k, v in het.params.items()) + " SI)"
            lines.append(f"    {name} = {value!s}{extra}")
        lines.append(f"synapse: {self.synapse_model}; on_pre: {self.on_pre}")
        return "\n".join(lines)


def parameter_declarations(defaults):
    """Brian2 equation lines declaring each parameter as a per-neuron constant."""
    lines = []
    for name, value in defaults.items():
        unit = "1" if value.dim is DIMENSIONLESS else dimension_name(value.dim)
        lines.append(f"{name} : {unit} (constant)")
    return "\n".join(lines)


def base_variables():
    """Brian2's constants, functions, units and implicit variables, for unit analysis."""
    variables = {name: Constant(name, value) for name, value in DEFAULT_CONSTANTS.items()}
    variables.update(DEFAULT_FUNCTIONS)
    variables.update({name: Constant(name, float(u), dimensions=u.dim) for name, u in DEFAULT_UNITS.items()})
    variables.update({name: Variable(name, dimensions=dim) for name, dim in IMPLICIT.items()})
    return variables


# -- loading ---------------------------------------------------------------------------
def list_cards(directory=CARD_DIR):
    """Names of the cards in ``directory`` (sorted)."""
    return sorted(p.stem for p in Path(directory).glob("*.toml"))


def card_path(name_or_path, directory=CARD_DIR):
    """Resolve a card name (``"lif"``) or a path to a ``.toml`` file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise ModelCardError(str(path), "<file>", "no such file")
        return path
    path = Path(directory) / f"{name_or_path}.toml"
    if not path.is_file():
        raise ModelCardError(str(name_or_path), "<file>",
                             f"no card of that name; known cards: {', '.join(list_cards(directory))}")
    return path


def load_card(name_or_path, directory=CARD_DIR):
    """Load and validate a card by name (from ``equations/``) or by path."""
    path = card_path(name_or_path, directory)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelCardError(str(path), "<file>", f"cannot read: {exc}") from None
    return card_from_string(text, name=path.stem, source=str(path), origin=str(path.resolve()))


def card_from_string(text, name="<string>", source="<string>", origin=None):
    """Parse and validate a card from TOML text (``origin``: the file it came from, if any)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelCardError(name, "<toml>", f"not valid TOML: {exc}") from None
    name = data.get("name", name)
    if not isinstance(name, str):
        raise ModelCardError(str(name), "name", f"must be a string, got {name!r}")
    return _Validator(name, source, text, data, origin).card()


class _Validator:
    """Checks one card's data, field by field, and builds the ModelCard."""

    def __init__(self, name, source, text, data, origin=None):
        self.name, self.source, self.text, self.data, self.origin = name, source, text, data, origin
        self.unitless = set()          # parameters given without a unit, suspects of a unit mismatch

    def fail(self, field, problem):
        raise ModelCardError(self.name, field, problem)

    def keys(self, table, allowed, where):
        if not isinstance(table, dict):
            self.fail(where, f"must be a table, got {type(table).__name__}")
        unknown = sorted(set(table) - allowed)
        if unknown:
            self.fail(f"{where}.{unknown[0]}" if where else unknown[0],
                      f"unknown key; allowed keys: {', '.join(sorted(allowed))}")

    def string(self, table, key, where, required=True):
        value = table.get(key)
        if value is None:
            if required:
                self.fail(f"{where}.{key}", "missing (required)")
            return None
        if not isinstance(value, str):
            self.fail(f"{where}.{key}", f"must be a string, got {value!r}")
        return value.strip()

    def card(self):
        d = self.data
        self.keys(d, TOP_KEYS, "")
        kind = d.get("kind", "spiking")
        if not isinstance(kind, str) or kind not in KINDS:
            self.fail("kind", f"must be one of {sorted(KINDS)}, got {kind!r}")
        if "neuron" not in d:
            self.fail("neuron", "missing (required table)")
        neuron = d["neuron"]
        self.keys(neuron, NEURON_KEYS, "neuron")
        equations = self.equations(self.string(neuron, "equations", "neuron"))
        defaults = self.parameters(d.get("parameters", {}), equations)
        threshold = self.string(neuron, "threshold", "neuron", required=kind == "spiking")
        if kind == "rate" and threshold:
            self.fail("neuron.threshold", "a rate card has no threshold; remove it or set kind = 'spiking'")
        reset = self.string(neuron, "reset", "neuron", required=False)
        refractory = neuron.get("refractory")
        if refractory is not None and not isinstance(refractory, str):
            self.fail("neuron.refractory", f"must be a string such as '2*ms' or 't_ref', got {refractory!r}")
        refractory = refractory.strip() if refractory else None
        method = neuron.get("method", "exact")
        if not isinstance(method, str) or method not in METHODS:
            self.fail("neuron.method", f"unknown integration method {method!r}; choose one of {sorted(METHODS)}")
        initial = neuron.get("initial", {})
        self.keys(initial, set(equations.names), "neuron.initial")
        for key, value in initial.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.fail(f"neuron.initial.{key}", f"must be a string or a number, got {value!r}")
        initial = {k: str(v) for k, v in initial.items()}
        synapse = d.get("synapse", {})
        self.keys(synapse, SYNAPSE_KEYS, "synapse")
        if kind == "spiking" and not synapse:
            self.fail("synapse", "missing (a spiking card needs a [synapse] table with model and on_pre)")
        synapse_model = self.string(synapse, "model", "synapse", required=kind == "spiking") or ""
        on_pre = self.string(synapse, "on_pre", "synapse", required=kind == "spiking") or ""
        weight = synapse.get("weight", "w")
        spike_time = self.spike_time(neuron, equations, kind)
        description, references = d.get("description", ""), d.get("references", ())
        if not isinstance(description, str):
            self.fail("description", f"must be a string, got {description!r}")
        if not isinstance(references, (list, tuple)) or not all(isinstance(r, str) for r in references):
            self.fail("references", f"must be a list of strings, got {references!r}")
        if not isinstance(weight, str):
            self.fail("synapse.weight", f"must be the name of a variable, got {weight!r}")
        card = ModelCard(
            name=self.name, source=self.source, text=self.text, kind=kind, equations=equations,
            threshold=threshold, reset=reset, refractory=refractory,
            method=method, defaults=defaults, heterogeneity={}, initial=initial,
            synapse_model=synapse_model, on_pre=on_pre, weight=weight, spike_time=spike_time,
            origin=self.origin, description=description.strip(), references=tuple(references))
        self.check_code(card)
        self.check_values(card)
        return replace(card, heterogeneity=self.heterogeneity(d.get("heterogeneity", {}), card))

    def check_values(self, card):
        """Parameter bounds, a refractory period given as a quantity, and computable initial values."""
        for name, value in card.defaults.items():
            bound = card.lower_bound(name)
            if bound is not None and not (float(value) >= bound[0] if bound[1] else float(value) > bound[0]):
                what = "a duration, must be >= 0 s" if bound[1] else "a time constant, must be > 0 s"
                self.fail(f"parameters.{name}", f"{what}; got {value}")
        if card.refractory and get_identifiers(card.refractory) <= set(DEFAULT_UNITS):
            try:
                period = parse_quantity(card.refractory)
            except UnitParseError as exc:
                self.fail("neuron.refractory", str(exc))
            if period.dim is second.dim and not float(period) >= 0:
                self.fail("neuron.refractory", f"a refractory period must be >= 0 s, got {period}")
        namespace = dict(DEFAULT_UNITS, **card.defaults)
        for var, expr in card.initial.items():
            parsed = parse_expression(expr)          # checked in check_code
            if parsed.names <= set(namespace) | set(CONSTANTS) and not parsed.random:
                try:
                    value = parsed.evaluate(namespace)
                except ExpressionError as exc:
                    self.fail(f"neuron.initial.{var}", str(exc))
                if not np.all(np.isfinite(np.asarray(value))):
                    self.fail(f"neuron.initial.{var}", f"'{expr}' is not finite")

    def spike_time(self, neuron, equations, kind):
        name = neuron.get("spike_time")
        if name is None:
            return None
        if kind != "spiking":
            self.fail("neuron.spike_time", "only a spiking card has spike times")
        if name not in equations.names:
            self.fail("neuron.spike_time", f"'{name}' must be a variable or subexpression declared in the "
                                           f"equations (e.g. '{name} = t + dt - lag : second')")
        if equations[name].dim is not second.dim:
            self.fail("neuron.spike_time", f"'{name}' must have units of second, "
                                           f"got {dimension_name(equations[name].dim)}")
        return name

    def equations(self, text):
        for lineno, line in enumerate(text.splitlines(), 1):
            code = line.split("#")[0]
            if code.strip() and _MISSING_UNIT.match(code):
                self.fail("neuron.equations",
                          f"line {lineno} '{line.strip()}' has no unit: end it with ': <unit>' "
                          "(for example ': volt' or ': 1' for dimensionless)")
        try:
            return Equations(text)
        except Exception as exc:  # Brian2 raises EquationError, ValueError, KeyError...
            self.fail("neuron.equations", f"{type(exc).__name__}: {exc}")

    def parameters(self, table, equations):
        """Default values; a value may use other parameters (``Cm = "1*uF/cm**2 * area"``),
        resolved in dependency order from their defaults (not per neuron)."""
        self.keys(table, set(table) if isinstance(table, dict) else set(), "parameters")
        for name in table:
            if name in equations.names:
                self.fail(f"parameters.{name}", "is also defined in the equations; define it once")
            if name in DEFAULT_UNITS or name in DEFAULT_FUNCTIONS or name in IMPLICIT:
                self.fail(f"parameters.{name}", "shadows a Brian2 unit, function or implicit variable")
        defaults, todo = {}, dict(table)
        while todo:
            ready = {name: raw for name, raw in todo.items()
                     if not isinstance(raw, str) or not (get_identifiers(raw) & (set(todo) - {name}))}
            if not ready:          # a cycle (or a self-reference): report the first one
                ready = dict([next(iter(todo.items()))])
            for name, raw in ready.items():
                try:
                    defaults[name] = parse_quantity(raw, names=defaults)
                except UnitParseError as exc:
                    self.fail(f"parameters.{name}", str(exc))
                del todo[name]
        self.unitless = {name for name, value in defaults.items() if value.dim is DIMENSIONLESS}
        return {name: defaults[name] for name in table}

    def unit_mismatch(self, code, field, problem):
        """Report a unit mismatch at a unit-less parameter the code uses (a forgotten unit), else at ``field``."""
        suspects = sorted(get_identifiers(code) & self.unitless)
        if suspects:
            self.fail(f"parameters.{suspects[0]}", f"has no unit ({self.data['parameters'][suspects[0]]!r}), "
                                                   f"and {problem} in {field}; did you forget one?")
        self.fail(field, problem)

    def heterogeneity(self, table, card):
        self.keys(table, set(card.defaults), "heterogeneity")
        dists = {}
        for name, spec in table.items():
            where = f"heterogeneity.{name}"
            try:
                dist = Distribution.from_table(name, spec)
                expected = card.defaults[name].dim
                if dist.dim is not None and dist.dim is not expected:
                    raise DistributionError(f"values have units of {dimension_name(dist.dim)}, but "
                                            f"parameter '{name}' has units of {dimension_name(expected)}")
                bound = card.lower_bound(name)
                if bound is not None:
                    dist.check_bound(*bound, what=f"'{name}' is a time constant" if not bound[1]
                                     else f"'{name}' is a duration")
            except (DistributionError, UnitParseError) as exc:
                self.fail(where, str(exc))
            dists[name] = dist
        return dists

    # -- identifiers and units across equations, threshold, reset and synapse --------
    def variables(self, equations, defaults):
        variables = base_variables()
        for eq in equations.ordered:
            variables[eq.varname] = Variable(eq.varname, dimensions=eq.dim)
        for name, value in defaults.items():
            variables[name] = Variable(name, dimensions=value.dim)
        return variables

    def check_code(self, card):
        variables = self.variables(card.equations, card.defaults)
        for name in card.equations.stochastic_variables:
            variables[name] = Variable(name, dimensions=(second ** -0.5).dim)
        known = set(variables)
        for eq in card.equations.ordered:
            if eq.expr is None:
                continue
            self.identifiers(eq.expr.code, known, "neuron.equations", f"equation for '{eq.varname}'")
            expected = eq.dim / second.dim if eq.type == DIFFERENTIAL_EQUATION else eq.dim
            if eq.type in (DIFFERENTIAL_EQUATION, SUBEXPRESSION):
                self.dimensions(eq.expr.code, expected, variables, "neuron.equations",
                                f"right-hand side of d{eq.varname}/dt" if eq.type == DIFFERENTIAL_EQUATION
                                else f"subexpression '{eq.varname}'")
        if card.threshold:
            self.identifiers(card.threshold, known, "neuron.threshold", "threshold")
            self.dimensions(card.threshold, DIMENSIONLESS, variables, "neuron.threshold", "threshold")
        if card.reset:
            self.identifiers(card.reset, known, "neuron.reset", "reset")
            self.statements(card.reset, variables, "neuron.reset")
        if card.refractory:
            self.identifiers(card.refractory, known, "neuron.refractory", "refractory")
            try:
                dim = parse_expression_dimensions(card.refractory, variables)
            except (SyntaxError, KeyError, TypeError, ValueError, DimensionMismatchError) as exc:
                self.fail("neuron.refractory", f"{type(exc).__name__}: {exc}")
            if dim is not second.dim and dim is not DIMENSIONLESS:
                self.fail("neuron.refractory",
                          f"must be a time (e.g. '2*ms') or a condition, got units of {dimension_name(dim)}")
        for name, expr in card.initial.items():
            try:
                parse_expression(expr)
            except ExpressionError as exc:
                self.fail(f"neuron.initial.{name}", str(exc))
            self.identifiers(expr, known, f"neuron.initial.{name}", "initial value")
            self.dimensions(expr, card.dimension(name), variables, f"neuron.initial.{name}",
                            f"initial value of '{name}'")
        if card.kind == "spiking":
            self.check_synapse(card)

    def check_synapse(self, card):
        try:
            syn_eqs = Equations(card.synapse_model)
        except Exception as exc:
            self.fail("synapse.model", f"{type(exc).__name__}: {exc}")
        if card.weight not in syn_eqs.names:
            self.fail("synapse.weight", f"weight variable '{card.weight}' is not defined in synapse.model "
                                        f"(defined: {sorted(syn_eqs.names)})")
        neuron_names = set(card.equations.names) | set(card.defaults)
        for name in sorted(syn_eqs.names & neuron_names):
            self.fail("synapse.model", f"synaptic variable '{name}' has the name of a neuron variable or "
                                       "parameter; Brian2 forbids synaptic variables named like pre- or "
                                       f"postsynaptic ones: rename it (e.g. '{name}_syn')")
        variables = base_variables()
        for name in list(card.equations.names) + list(card.defaults):
            dim = card.dimension(name)
            for suffix in ("_post", "_pre"):
                variables[name + suffix] = Variable(name + suffix, dimensions=dim)
        for eq in syn_eqs.ordered:
            variables[eq.varname] = Variable(eq.varname, dimensions=eq.dim)
        variables["lastupdate"] = Variable("lastupdate", dimensions=second.dim)
        self.identifiers(card.on_pre, set(variables), "synapse.on_pre", "on_pre")
        self.statements(card.on_pre, variables, "synapse.on_pre")

    def identifiers(self, code, known, field, what):
        unknown = sorted(get_identifiers(code) - known - {"True", "False", "and", "or", "not"})
        if unknown:
            self.fail(field, f"{what} uses undefined identifier(s) {unknown}: declare them in "
                             "[parameters] or as variables in the equations")

    def dimensions(self, code, expected, variables, field, what):
        try:
            check_dimensions(code, expected, variables)
        except DimensionMismatchError as exc:
            self.unit_mismatch(code, field, f"unit mismatch in {what}: {exc}")
        except (SyntaxError, KeyError, TypeError, ValueError) as exc:
            self.fail(field, f"cannot analyse {what} '{code}': {type(exc).__name__}: {exc}")

    def statements(self, code, variables, field):
        try:
            check_units_statements(code, variables)
        except DimensionMismatchError as exc:
            self.unit_mismatch(code, field, f"unit mismatch: {exc}")
        except (SyntaxError, KeyError, TypeError, ValueError, AssertionError) as exc:
            self.fail(field, f"cannot analyse '{code}': {type(exc).__name__}: {exc}")
