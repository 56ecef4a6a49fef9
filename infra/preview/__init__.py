"""The offline preview: the real program under Pulumi mocks, written as ``pulumi preview --json`` would.

Tooling, never imported by the Pulumi program. Modules: :mod:`.mocks` (the one mock harness, shared
with the tests), :mod:`.render` (run, then write preview.json, manifests and the summary),
:mod:`.cli` (``python -m infra render``).
"""
