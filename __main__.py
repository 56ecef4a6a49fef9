"""Pulumi entry point: `pulumi up` runs this. Nothing is created at import time elsewhere."""
from infra.program import run

run()
