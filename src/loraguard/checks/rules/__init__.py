"""Importing this package registers every rule (one module per code family)."""

from loraguard.checks.rules import config, engines, files, identity, structure, values

__all__ = ["config", "engines", "files", "identity", "structure", "values"]
