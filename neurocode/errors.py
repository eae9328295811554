"""One root, :class:`NeurocodeError`, and one exception class per domain under it.

Every error a user can cause with a file, a config or a command-line option is a
``NeurocodeError``; the command line prints those as one line and exits 2, while any
other exception (a bug) keeps its traceback. Each domain error also stays a
``ValueError`` (or ``RuntimeError``, ``FileNotFoundError``) so callers may catch broadly.

>>> issubclass(ModelCardError, NeurocodeError) and issubclass(ModelCardError, ValueError)
True
"""


class NeurocodeError(Exception):
    """Root of the errors caused by input: a card, a spec, a config, a dataset, an option."""


class ModelCardError(NeurocodeError, ValueError):
    """A model card is malformed: the message names the card, the field and the problem."""

    def __init__(self, card, field, problem):
        self.card = card
        self.field = field
        self.problem = problem
        super().__init__(f"model card '{card}', field '{field}': {problem}")


class NetworkSpecError(NeurocodeError, ValueError):
    """A NetworkSpec is inconsistent (shapes, units, values, format version)."""


class ConfigError(NeurocodeError, ValueError):
    """A config value, command-line option or run folder is unusable; the message names it."""


class DatasetError(NeurocodeError, ValueError):
    """A dataset file is corrupt, truncated or holds impossible values; the message names the file."""


class DeviceError(NeurocodeError, RuntimeError):
    """A Brian2 device cannot be set up or cannot run here; the message names the setting."""
