"""``python -m infra upstream fetch | verify [--upstream DIR]``: the pinned upstream files.

- ``fetch`` fills the cache (from the mirror when one is given, else by download) and verifies each file;
- ``verify`` checks that every pinned file is present (cache or mirror; no download) with its sha256,
  and prints one row per artifact.

Both exit 1 when any artifact is missing or fails its checksum, 0 otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra import upstream


def add_upstream_arg(ap: argparse.ArgumentParser) -> None:
    """The ``--upstream DIR`` option every command that reads upstream artifacts takes."""
    ap.add_argument("--upstream", type=Path, action="append", metavar="DIR",
                    help=f"offline mirror of the pinned upstream files, laid out as <owner>/<repo>/<tag>/<path> "
                         f"(repeatable; default: ${upstream.ENV_MIRROR})")


def parse_args(ap: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``ap.parse_args`` that also installs the ``--upstream`` folders; like argparse, a bad one is a
    one-line error and exit code 2."""
    args = ap.parse_args(argv)
    folders = getattr(args, "upstream", None)
    if folders:
        for folder in folders:
            if not folder.is_dir():
                print(f"error: --upstream {folder}: not a folder", file=sys.stderr)
                raise SystemExit(2)
        upstream.set_mirrors(folders)
    return args


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m infra upstream", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("fetch", "verify"))
    add_upstream_arg(ap)
    args = parse_args(ap, argv)
    rows, bad = [], 0
    for key in upstream.iter_keys():
        a = upstream.ARTIFACTS[key]
        try:
            loc = upstream.locate(key, download=args.action == "fetch")
            if args.action == "fetch" and loc.source != "cache":
                upstream.write_cache(a, loc.data)
            status, where = "verified", f"{loc.source}: {loc.where}"
        except upstream.ChecksumMismatch as exc:
            status, where, bad = "CHECKSUM MISMATCH", str(exc), bad + 1
        except upstream.ArtifactUnavailable:
            status, where, bad = "MISSING", a.url, bad + 1
        except OSError as exc:
            status, where, bad = "ERROR", f"{type(exc).__name__}: {exc}", bad + 1
        rows.append((key, a.tag, a.sha256[:12], a.license, status, where))
    widths = [max(len(r[i]) for r in rows + [("artifact", "tag", "sha256", "license", "status", "")])
              for i in range(5)]
    header = ("artifact", "tag", "sha256", "license", "status")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  source")
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5])
    print(f"\n{len(rows) - bad} of {len(rows)} pinned artifacts verified"
          + (f"; {bad} not: provide them with --upstream DIR or ${upstream.ENV_MIRROR}, or `python -m infra "
             "upstream fetch` where there is network" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
