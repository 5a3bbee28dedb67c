"""Writers from a store to files (the inverse of :mod:`core.importers`)."""
