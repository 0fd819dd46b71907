"""Corpus filtering before training: readers → filters → writers, run locally or on Ray.

Every document read ends up in exactly one place: kept, removed (with the filter, score and
threshold that removed it) or errored (with the file, line and what was wrong).
"""
