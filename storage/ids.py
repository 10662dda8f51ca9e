"""The range of ids, numbers and offsets the database can hold, as request-schema types.

SQLite (like most databases) stores INTEGER as signed 64 bits. A larger value from a request
used to reach the driver and end as an OverflowError, a 500; bounded in the schema it is a
422 naming the field before any SQL runs (issue 12, defect 4).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MAX_INT64 = 2**63 - 1

RowId = Annotated[int, Field(ge=1, le=MAX_INT64)]
ImageNumber = Annotated[int, Field(ge=0, le=MAX_INT64)]
