"""Data platforms whose grants sevtool reads and changes, behind one small interface (see base.py)."""
