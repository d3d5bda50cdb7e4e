"""Segmentation losses (Dice, Tversky)."""
