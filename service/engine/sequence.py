"""Sequence losses (CTC)."""
