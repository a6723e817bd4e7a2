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
    """Pickle for values, secret-free JSON records for exceptions."""

    def __init__(self) -> None:
        self._values = DefaultSerializer()

    def name(self) -> str:
        return SERIALIZER_NAME

    def serialize(self, data: Any) -> str:
        if isinstance(data, BaseException):
            return json.dumps(error_record(data))
        return self._values.serialize(data)

    def deserialize(self, serialized_data: str) -> Any:
        # Base64 (a pickle) never starts with "{".
        if serialized_data.startswith("{"):
            record = json.loads(serialized_data)
            if isinstance(record, dict) and ERROR_RECORD_KEY in record:
                return rebuild_error(record)
        return self._values.deserialize(serialized_data)
