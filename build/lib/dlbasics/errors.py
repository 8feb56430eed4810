"""Errors a user can cause. Entry points print their message in one line and exit non-zero."""


class UserError(Exception):
    """A mistake the user can fix (bad override, missing data, incompatible choices).

    The message must say what to do; the entry points print it without a traceback.
    """


class IncompatibleDataError(UserError):
    """A model was asked to consume data it cannot handle."""


class MissingDataError(UserError):
    """Dataset files are absent and could not be downloaded."""


class NonFiniteLossError(UserError):
    """The training loss became NaN or infinite."""
