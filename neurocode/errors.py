"""One exception class per domain, each a ``ValueError`` so callers may catch broadly."""


class ModelCardError(ValueError):
    """A model card is malformed: the message names the card, the field and the problem."""

    def __init__(self, card, field, problem):
        self.card = card
        self.field = field
        self.problem = problem
        super().__init__(f"model card '{card}', field '{field}': {problem}")


class NetworkSpecError(ValueError):
    """A NetworkSpec is inconsistent (shapes, units, format version)."""


class DeviceError(RuntimeError):
    """A Brian2 device cannot be set up or cannot run here; the message names the setting."""
