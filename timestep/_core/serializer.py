"""The serializer DBOS stores Timestep's values and errors with.

Values are DBOS's default pickle (workflow arguments and step outputs are already plain JSON
data). Errors are JSON records (``error_records``): never a pickle, which for a provider error
would hold the API key and the prompt and could not be read back. Every process on the
database (workers, and ``DBOSClient`` readers) must use it, so both are made here.
"""

from __future__ import annotations

import json
from typing import Any

from dbos import Serializer
from dbos._serialization import DefaultSerializer

from .error_records import ERROR_RECORD_KEY, error_record, rebuild_error

__all__ = ["SERIALIZER_NAME", "TimestepSerializer"]

SERIALIZER_NAME = "timestep_v1"


class TimestepSerializer(Serializer):
    """DBOS's serializer for Timestep: pickle for values, secret-free JSON records for errors.

    ``configure_dbos`` installs it; an error read back is rebuilt as its own class where this
    process can, else as ``RecordedError``.
    """

    def __init__(self) -> None:
        self._values = DefaultSerializer()

    def name(self) -> str:
        """The serializer's name, which DBOS records with each value.

        Returns:
            The name.
        """
        return SERIALIZER_NAME

    def serialize(self, data: Any) -> str:
        """A value (pickled) or an exception (as a JSON record without secrets) as text.

        Args:
            data: The value or exception.

        Returns:
            The text DBOS stores.
        """
        if isinstance(data, BaseException):
            return json.dumps(error_record(data))
        return self._values.serialize(data)

    def deserialize(self, serialized_data: str) -> Any:
        """The value or exception ``serialize`` stored.

        Args:
            serialized_data: The stored text.

        Returns:
            The value, or the exception rebuilt (``RecordedError`` when its class cannot be).
        """
        # Base64 (a pickle) never starts with "{".
        if serialized_data.startswith("{"):
            record = json.loads(serialized_data)
            if isinstance(record, dict) and ERROR_RECORD_KEY in record:
                return rebuild_error(record)
        return self._values.deserialize(serialized_data)
