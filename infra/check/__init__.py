"""``python -m infra check``: validate what a stack renders (or a folder of YAML) before anything is applied.

Tooling, never imported by the Pulumi program. Modules: :mod:`.cli` (argparse and ``main``),
:mod:`.run` (a stack or a folder, end to end), :mod:`.objects` (core and CRD validation of parsed
objects), :mod:`.checkov` (checkov and ``check-skips.yaml``), :mod:`.report` (findings, coverage,
the printed report); the validators: :mod:`.crds` (the pinned CRDs' schemas), :mod:`.defaults`
(structural defaulting), :mod:`.cel` with :mod:`.cel_rewrite` and :mod:`.cel_ext` (CEL rules),
:mod:`.helm_values` (each release's values against its chart).
"""
