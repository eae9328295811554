"""Model cards: the shipped cards load, and each kind of malformed card is rejected by name."""

import textwrap

import pytest
from brian2 import ms, mV

from neurocode.errors import ModelCardError
from neurocode.cards import card_from_string, list_cards, load_card

SHIPPED = ["alif", "coba_lif", "izhikevich", "lif", "ttfs"]

GOOD = """
description = "test card"
[neuron]
equations = '''
dv/dt = (v_rest - v + I_syn*R_m)/tau_m : volt (unless refractory)
dI_syn/dt = -I_syn/tau_syn : amp
'''
threshold = "v > v_th"
reset = "v = v_rest"
refractory = "2*ms"
method = "exact"
[parameters]
tau_m = "20*ms"
tau_syn = "5*ms"
R_m = "100*Mohm"
v_rest = "-65*mV"
v_th = "-50*mV"
[heterogeneity.tau_m]
distribution = "gamma"
mean = "20*ms"
cv = 0.3
[synapse]
model = "w : amp"
on_pre = "I_syn_post += w"
"""


def card(text=GOOD, **replace):
    for old, new in replace.items():
        text = text.replace(old.replace("_SP_", " "), new)
    return card_from_string(textwrap.dedent(text), name="bad")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_cards_load(name):
    c = load_card(name)
    assert c.name == name and c.kind == "spiking"
    assert c.threshold and c.synapse_model and c.on_pre
    assert set(c.heterogeneity) <= set(c.defaults)


def test_list_cards_includes_shipped():
    assert set(SHIPPED) <= set(list_cards())


def test_good_card_fields():
    c = card()
    assert c.state_variables == ["I_syn", "v"] or sorted(c.state_variables) == ["I_syn", "v"]
    assert c.defaults["tau_m"] == 20 * ms and c.defaults["v_th"] == -50 * mV
    assert "tau_m : second (constant)" in str(c.full_equations) or "tau_m : s (constant)" in str(c.full_equations)
    assert c.weight == "w" and c.weight_dim == (1 * __import__("brian2").amp).dim
    assert len(c.sha256) == 64


@pytest.mark.parametrize("name", ["lif", "ttfs"])
def test_card_pickles_as_its_text(name):
    import pickle

    c = load_card(name)
    back = pickle.loads(pickle.dumps(c))
    assert back.sha256 == c.sha256 and back.source == c.source
    assert {k: v.dim for k, v in back.defaults.items()} == {k: v.dim for k, v in c.defaults.items()}
    assert str(back.full_equations) == str(c.full_equations)


def test_card_hash_changes_with_text():
    assert card().sha256 != card(**{'"20*ms"': '"21*ms"'}).sha256


@pytest.mark.parametrize("mutation, field, message", [
    ({'description = "test card"': 'colour = "red"'}, "colour", "unknown key"),
    ({'threshold = "v > v_th"': ""}, "neuron.threshold", "missing"),
    ({"method = \"exact\"": "method = \"exact\"\nthreshhold = 'v>0*mV'"}, "neuron.threshhold", "unknown key"),
    ({"dI_syn/dt = -I_syn/tau_syn : amp": "dI_syn/dt = -I_syn/tau_syn"}, "neuron.equations", "has no unit"),
    ({'tau_syn = "5*ms"': 'tau_syn = "5*mV"'}, "neuron.equations", "unit mismatch"),
    ({'v_th = "-50*mV"': 'v_th = "-50*nA"'}, "neuron.threshold", "unit mismatch"),
    ({"I_syn*R_m": "I_syn*R_m*gain"}, "neuron.equations", r"undefined identifier\(s\) \['gain'\]"),
    ({'reset = "v = v_rest"': 'reset = "v = v_rest + offset"'}, "neuron.reset", "undefined identifier"),
    ({'on_pre = "I_syn_post += w"': 'on_pre = "v_post += w"'}, "synapse.on_pre", "unit mismatch"),
    ({'on_pre = "I_syn_post += w"': 'on_pre = "I_syn_post += w*scale"'}, "synapse.on_pre", "undefined identifier"),
    ({'"20*ms"': '"20*msec_typo"'}, "parameters.tau_m", "not a Brian2 unit"),
    ({"cv = 0.3": "cv = -0.3"}, "heterogeneity.tau_m", "cv must be > 0"),
    ({'distribution = "gamma"': 'distribution = "poisson"'}, "heterogeneity.tau_m", "unknown distribution"),
    ({'distribution = "gamma"\nmean = "20*ms"\ncv = 0.3': 'distribution = "normal"\nmean = "20*ms"\ncv = 0.3'},
     "heterogeneity.tau_m", "equal to or below 0"),
    ({'distribution = "gamma"\nmean = "20*ms"\ncv = 0.3': 'distribution = "uniform"\nlow = "30*ms"\nhigh = "10*ms"'},
     "heterogeneity.tau_m", "must be below"),
    ({'distribution = "gamma"\nmean = "20*ms"': 'distribution = "gamma"\nmean = "-20*ms"'},
     "heterogeneity.tau_m", "positive mean"),
    ({'mean = "20*ms"': 'mean = "20*mV"'}, "heterogeneity.tau_m", "units of volt"),
    ({'method = "exact"': 'method = "magic"'}, "neuron.method", "unknown integration method"),
    ({'refractory = "2*ms"': 'refractory = "2*mV"'}, "neuron.refractory", "must be a time"),
    ({'model = "w : amp"': 'model = "g : amp"'}, "synapse.weight", "not defined"),
    ({'model = "w : amp"': 'model = "w : amp\\nv : volt"'}, "synapse.model", "name of a neuron variable"),
    ({'method = "exact"': 'method = "exact"\nspike_time = "t_hit"'}, "neuron.spike_time", "must be a variable"),
    ({'method = "exact"': 'method = "exact"\nspike_time = "v"'}, "neuron.spike_time", "units of second"),
])
def test_bad_cards_are_rejected_with_named_field(mutation, field, message):
    with pytest.raises(ModelCardError, match=rf"model card 'bad', field '{field}': .*{message}"):
        card(**mutation)


def test_invalid_toml_is_reported():
    with pytest.raises(ModelCardError, match="not valid TOML"):
        card_from_string("[neuron\nequations=", name="bad")


def test_unknown_card_name_lists_known_cards():
    with pytest.raises(ModelCardError, match="no card of that name; known cards: .*lif"):
        load_card("no_such_model")


def test_rate_card_needs_no_threshold():
    text = """
    kind = "rate"
    [neuron]
    equations = "dx/dt = -x/tau : 1"
    method = "euler"
    [parameters]
    tau = "10*ms"
    """
    c = card_from_string(textwrap.dedent(text), name="decay")
    assert c.kind == "rate" and c.threshold is None and c.state_variables == ["x"]


def test_rate_card_with_threshold_is_rejected():
    text = ('kind = "rate"\n[neuron]\nequations = "dx/dt = -x/tau : 1"\nthreshold = "x > 1"\n'
            '[parameters]\ntau = "1*ms"\n')
    with pytest.raises(ModelCardError, match="neuron.threshold.*rate card has no threshold"):
        card_from_string(text, name="bad")


def test_parameter_defined_twice_is_rejected():
    with pytest.raises(ModelCardError, match="parameters.v.*also defined in the equations"):
        card(**{'tau_m = "20*ms"': 'tau_m = "20*ms"\nv = "1*mV"'})


def test_parameters_may_use_other_parameters_in_any_order():
    """COBAHH's style: ``Cm = 1 uF/cm**2 * area`` (from the defaults, not per neuron)."""
    c = card(**{'tau_m = "20*ms"': 'tau_m = "C_m/g_L"\nC_m = "1*ufarad*cm**-2 * area"\n'
                                   'g_L = "5e-5*siemens*cm**-2 * area"\narea = "20000*umetre**2"'})
    assert float(c.defaults["tau_m"]) == pytest.approx(20e-3)
    assert float(c.defaults["C_m"]) == pytest.approx(200e-12)


def test_parameters_that_refer_to_each_other_are_refused():
    with pytest.raises(ModelCardError, match=r"field 'parameters\.\w+': .*not a Brian2 unit nor a parameter"):
        card(**{'tau_m = "20*ms"': 'tau_m = "2*tau_x"\ntau_x = "tau_m/2"'})
