"""Demos and benchmarks built on the runtime."""
