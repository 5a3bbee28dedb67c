"""Analyses of stored runs for researchers and benchmark authors: failure classes, origins,
ablations from stored candidates, bootstrap intervals, comparisons, doubt ordering, reports."""
