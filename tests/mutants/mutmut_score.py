"""Print the score of the last ``mutmut run`` (``make mutmut``): informative, never gating.

Reads ``mutants/mutmut-cicd-stats.json``, which ``mutmut export-cicd-stats``
writes. The gating contract is the curated list (``make mutants``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

STATS = Path(__file__).resolve().parent.parent.parent / "mutants" / "mutmut-cicd-stats.json"


def main() -> int:
    try:
        stats = json.loads(STATS.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"mutmut: no results to score ({e}); did `mutmut run` finish?", file=sys.stderr)
        return 1
    total, killed = stats["total"], stats["killed"]
    others = {k: v for k, v in stats.items() if k not in ("total", "killed") and v}
    score = 100.0 * killed / total if total else 0.0
    print(f"mutmut: {killed} of {total} mutants killed ({score:.0f}%)"
          + "".join(f"; {v} {k.replace('_', ' ')}" for k, v in others.items()))
    print("  `.venv/bin/mutmut results` lists the survivors, `.venv/bin/mutmut show NAME` shows one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
