"""File formats the project reads and writes (no store access)."""
