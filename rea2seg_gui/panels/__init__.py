"""Panels: one widget per panel; each draws what it is given and emits what the user asked for."""
