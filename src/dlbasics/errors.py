"""Errors a user can cause. Entry points print their message in one line and exit non-zero."""


class UserError(Exception):
    """A mistake the user can fix (bad override, missing data, incompatible choices).

    The message must say what to do; the entry points print it without a traceback.
    """


class IncompatibleDataError(UserError):
    """A model was asked to consume data it cannot handle."""


class MissingDataError(UserError):
    """Dataset files are absent and could not be downloaded."""


class DamagedDataError(UserError):
    """Dataset files are present but cannot be read as the dataset they should hold."""


class NonFiniteError(UserError):
    """A loss, a gradient or a metric became NaN or infinite."""
