"""The metric store: series, compact sample chunks, rollups. Knows nothing of devices or agents."""
