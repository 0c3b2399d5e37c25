"""The lesson's gateway, reproduced from its description for the benchmark's baseline.

Deliberately NOT improved: no metadata discovery, no timeouts on the download, one channel, the
preprocessing of keras-image-helper. bench/tests/test_baseline.py checks it stays faithful.
"""
