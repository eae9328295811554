"""Stale cards: a NetworkSpec stores each card's text and hash; the card file may have changed since.

:func:`choose_cards` decides which text a loaded spec runs with -- the text stored in it
(``"stored"``, the default: what the network was built or trained with) or the card file
as it reads now (``"current"``) -- and logs a warning saying which, and why, for every
card whose file differs. The file compared is the one the card was read from (kept in
the spec), else the library card of the same name.

>>> from neurocode.spec import NetworkSpec
>>> spec = NetworkSpec()
>>> _ = spec.add_population("exc", "lif", 2)
>>> changed_cards(spec)
[]
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from neurocode.cards.card import CARD_DIR, load_card
from neurocode.errors import ModelCardError, NetworkSpecError

log = logging.getLogger(__name__)

#: Where a loaded spec's card text may come from.
CARD_SOURCES = ("stored", "current")


def card_file(card, directory=None):
    """The file that holds ``card`` now: ``directory/<name>.toml`` if a library is given, else the
    file it was read from if that still exists, else the library card of its name (may be absent)."""
    if directory is None and card.origin and Path(card.origin).is_file():
        return Path(card.origin)
    return Path(directory or CARD_DIR) / f"{card.name}.toml"


def _current(card, directory):
    """``(path, card as the file reads now or None, why not)``."""
    path = card_file(card, directory)
    if not path.is_file():
        return path, None, "no longer exists"
    try:
        return path, load_card(path), ""
    except ModelCardError as exc:
        return path, None, f"is no longer a valid card ({exc})"


def changed_cards(spec, directory=None):
    """Names of the cards of ``spec`` whose file is missing or differs from the stored text."""
    stale = []
    for pop in spec.populations.values():
        _, now, _ = _current(pop.card, directory)
        if now is None or now.sha256 != pop.card.sha256:
            stale.append(pop.card.name)
    return sorted(set(stale))


def choose_cards(spec, source="stored", directory=None):
    """``spec`` with each population's card taken from ``source`` (``"stored"`` or ``"current"``).

    Every card whose file changed is reported (a logged warning naming the file and the
    text used). ``"current"`` needs the file to exist and to keep the stored card's
    parameters and units, since the spec's per-neuron values are in them.
    """
    if source not in CARD_SOURCES:
        raise NetworkSpecError(f"card source must be one of {CARD_SOURCES}, got {source!r}")
    from neurocode.spec import Population

    out = copy.copy(spec)
    out.populations = dict(spec.populations)
    for name, pop in spec.populations.items():
        path, now, why = _current(pop.card, directory)
        if now is not None and now.sha256 == pop.card.sha256:
            continue
        change = why or "has changed since the spec was saved"
        if source == "stored":
            log.warning("card '%s' (population '%s'): %s %s; using the text stored in the spec "
                        "(--card-source current uses the file)", pop.card.name, name, path, change)
            continue
        if now is None:
            raise NetworkSpecError(f"card '{pop.card.name}' (population '{name}'): {path} {change}; "
                                   "use the text stored in the spec (--card-source stored)")
        _check_compatible(pop.card, now, name, path)
        log.warning("card '%s' (population '%s'): %s %s; using the file as it is now "
                    "(--card-source stored uses the text saved with the spec)", pop.card.name, name, path, change)
        out.populations[name] = Population(name, now, pop.size, dict(pop.params))
    return out


def _check_compatible(stored, now, population, path):
    units = {k: v.dim for k, v in stored.defaults.items()}
    weights = (now.weight_dim is stored.weight_dim) if stored.synapse_model and now.synapse_model \
        else stored.synapse_model == now.synapse_model
    if {k: v.dim for k, v in now.defaults.items()} != units or not weights:
        raise NetworkSpecError(f"card '{stored.name}' (population '{population}'): {path} changed its parameters, "
                               f"their units or the weight's unit, so the spec's values do not fit it; use the "
                               "stored text (--card-source stored) or rebuild the spec")
