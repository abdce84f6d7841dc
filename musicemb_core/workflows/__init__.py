"""Library-level jobs that combine layers below (maps, evaluation): generators the CLI and GUI both drive."""
