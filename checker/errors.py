"""Error hierarchy. Every error a user can cause derives from CheckerError."""


class CheckerError(Exception):
    """Base class for errors reported to the user without a traceback."""


class InputError(CheckerError):
    """A manifest or input file could not be read or understood."""


class PolicyError(CheckerError):
    """A ConstraintTemplate, Constraint, pack or suite is invalid."""


class ClusterError(CheckerError):
    """A live cluster could not be read."""


class ConfigError(CheckerError):
    """The repository configuration or the command line is invalid."""


# The documented exit codes of every command and of the GitHub Action.
EXIT_OK = 0        # nothing at or above the threshold
EXIT_FINDINGS = 1  # findings at or above it (or a file that could not be read)
EXIT_ERROR = 2     # usage, configuration or tool error
