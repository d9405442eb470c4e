"""Benchmarks of the kit (``make bench``): figures are medians and ratios measured side by side in one run."""
