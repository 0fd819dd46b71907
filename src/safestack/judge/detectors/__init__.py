"""The built-in detectors; each module registers itself with `@detector`."""
