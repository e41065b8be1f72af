"""Error types that stages turn into clear, one-line messages instead of tracebacks."""


class LigerError(Exception):
    """Base class: an expected failure with a message meant for the operator."""


class ConfigError(LigerError):
    """A configuration key is unknown, has the wrong type or an invalid value."""


class DataError(LigerError):
    """Input data cannot be processed at all (empty, wrong shape, non-finite values)."""


class ValidationFailed(LigerError):
    """A Great Expectations suite failed; the report says which expectations and why."""
