"""Speed measurements of the Mask R-CNN core (figures in docs/benchmarks.md)."""
