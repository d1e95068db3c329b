"""The Alembic migrations of the results store, shipped inside the package (``gabay db upgrade``)."""
