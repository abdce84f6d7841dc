"""Dockable panels; each independent of the others."""
