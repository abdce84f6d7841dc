"""Reusable widgets: numpy arrays and Qt in, signals out; no musicemb_core types."""
