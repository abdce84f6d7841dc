"""models layer (see DESIGN.md); filled by later issues."""
