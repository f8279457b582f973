"""Summarise py-spy ``--format raw`` profiles (collapsed stacks) by function and file.

``python -m bench.profile_summary FILE [FILE...] [--top N] [--focus TEXT]``

Prints, as a share of all samples: the inclusive time of the heaviest functions
(a function counts once per sample however often it recurses) and the self time
(leaf frame) grouped by function and by source file. ``--focus`` keeps only
samples whose stack contains TEXT (e.g. ``get_download``).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


# Leaves that are waits py-spy does not recognise as idle (a thread parked on a queue).
_IDLE_LEAVES = ("_connection_worker_thread (aiosqlite/core.py:59)",)


def _short(path: str) -> str:
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def parse(paths: list[Path], focus: str | None) -> list[tuple[list[str], int]]:
    stacks = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            if focus and focus not in stack:
                continue
            if any(stack.endswith(idle) for idle in _IDLE_LEAVES):
                continue
            frames = []
            for raw in stack.split(";"):
                match = _FRAME.match(raw.strip())
                if match:
                    frames.append(f"{match['func']} ({_short(match['file'])})")
                else:
                    frames.append(raw.strip())
            stacks.append((frames, int(count)))
    return stacks


def summarise(stacks: list[tuple[list[str], int]], top: int) -> str:
    total = sum(count for _, count in stacks) or 1
    inclusive: Counter[str] = Counter()
    self_func: Counter[str] = Counter()
    self_file: Counter[str] = Counter()
    for frames, count in stacks:
        for frame in set(frames):
            inclusive[frame] += count
        leaf = frames[-1] if frames else "?"
        self_func[leaf] += count
        file = leaf.rsplit("(", 1)[-1].rstrip(")") if "(" in leaf else leaf
        self_file[file.split(":")[0]] += count
    lines = [f"{total} samples"]
    for title, counter in (("inclusive", inclusive), ("self by function", self_func),
                           ("self by file", self_file)):
        lines.append(f"\n## {title}")
        lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--focus")
    args = parser.parse_args()
    print(summarise(parse(args.files, args.focus), args.top))


if __name__ == "__main__":
    main()
