"""Image detectors: one module per plug-in, registered with `@image_detector("name")`."""
