"""Mechanisms every layer shares: atomic outputs, file digests, signals, image grids, the Accelerator."""
