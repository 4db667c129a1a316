"""The project's own exception types.

Every error a user can cause (a bad file, a bad parameter, missing weights) is raised as one of
these, with a message that names the file or the parameter and says what to do. The CLI turns
them into one line on stderr and a non-zero exit.
"""

from __future__ import annotations


class SuperresError(Exception):
    """Base class of every error a user can cause and fix."""


class ConfigError(SuperresError):
    """A parameter is missing, has the wrong type, or a value out of range."""


class InvalidImageError(SuperresError):
    """A file cannot be used as an image: unreadable, truncated, too large, not an image."""


class DownloadError(SuperresError):
    """A dataset could not be fetched or failed its checksum."""


class WeightsError(SuperresError):
    """Model weights are missing, corrupt, or do not match the architecture."""
