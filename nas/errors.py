"""User-facing errors: the CLI prints their message as one line and exits with code 2."""


class NasError(Exception):
    """A problem the user can fix (bad input, missing data, unknown study, ...)."""


class ConfigError(NasError):
    """A config or search-space file that cannot describe a valid network."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")
        self.source, self.key, self.problem = source, key, problem
