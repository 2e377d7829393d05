"""The error hierarchy the CLI and UI turn into friendly messages.

Every error a user can cause or fix is a ``RagError`` whose message names the next
step. Anything else is a bug and is allowed to surface as one.
"""


class RagError(Exception):
    """A user-facing failure; the message says what to do next."""


class InputError(RagError):
    """The user's input (a question, a path, a flag value) cannot be used."""


class IndexMissingError(RagError):
    """There is no index yet in the data directory."""


class IndexCorruptError(RagError):
    """The index exists but cannot be read, or was built with another model."""


class IngestBusyError(RagError):
    """Another ingest holds the data directory's lock."""


class ModelUnavailableError(RagError):
    """A model is not installed locally (we never download at run time)."""


class StoreUnavailableError(RagError):
    """The vector store (a Chroma server) cannot be reached or does not answer in time."""
