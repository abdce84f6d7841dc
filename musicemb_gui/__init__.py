"""musicemb desktop app (PySide6 + pyqtgraph); imports musicemb_core, never the reverse."""
