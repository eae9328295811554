"""``neurocode models``: list the model cards, or show one."""

from neurocode.cards import CARD_DIR, list_cards, load_card
from neurocode.errors import ConfigError


def register(sub):
    parser = sub.add_parser("models", help="list model cards or show one",
                            description="List the model cards in equations/ or show one card.")
    parser.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    parser.add_argument("name", nargs="?", help="card name or path (for 'show')")
    parser.add_argument("--dir", default=CARD_DIR, help="folder of cards (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args):
    if args.action == "show":
        if not args.name:
            raise ConfigError("'models show' needs a card name, e.g. 'neurocode models show lif'")
        print(load_card(args.name, args.dir).summary())
        return 0
    for name in list_cards(args.dir):
        card = load_card(name, args.dir)
        params = ", ".join(f"{k}={v!s}" + ("~" if k in card.heterogeneity else "")
                           for k, v in card.defaults.items())
        print(f"{name:12s} {card.kind:8s} {card.method:18s} {params}")
    print("(~ marks heterogeneous parameters)")
    return 0
