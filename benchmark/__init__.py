"""Benchmark manifests (identities, motions, suites, published reference numbers), shipped as data."""
