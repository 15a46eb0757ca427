"""What every end-to-end test runs on: ``kind``, the database of the running system
(SQLite always; PostgreSQL under the ``postgres`` mark, skipped or failed as
``require_postgres`` decides)."""

from __future__ import annotations

import pytest

from tests.conftest import require_postgres


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()
    return str(request.param)
