"""Model cards: TOML files of Brian2 equations, loaded and checked.

>>> from neurocode.cards import load_card
>>> load_card("lif").name
'lif'
"""

from neurocode.cards.card import (CARD_DIR, ModelCard, base_variables, card_from_string, card_path, list_cards,
                                  load_card, parameter_declarations)
from neurocode.cards.heterogeneity import Distribution, DistributionError

__all__ = ["CARD_DIR", "ModelCard", "base_variables", "card_from_string", "card_path", "list_cards", "load_card",
           "parameter_declarations", "Distribution", "DistributionError"]
