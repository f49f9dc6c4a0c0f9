"""CausalMix: data mixture as causal inference, reproduced at small scale."""

__version__ = "0.1.0"
