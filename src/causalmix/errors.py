"""User-facing errors: one line that names the bad value and what was expected."""


class ConfigError(ValueError):
    """Raised before long work starts when a config value, file or column is unusable."""
