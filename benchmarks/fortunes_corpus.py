"""A second English text the size of tinyshakespeare, from Debian's `fortunes` packages, for `shakespeare.py --corpus`.

    apt-get install fortunes fortunes-min && python benchmarks/fortunes_corpus.py /tmp/fortunes-1.1M.txt
    python benchmarks/shakespeare.py --against_nanogpt /tmp/nanogpt --corpus /tmp/fortunes-1.1M.txt --variants ours

The plain-text fortune files in name order (not the `.dat` indexes, `.u8` copies or the ASCII-art files), each
fortune's `%` separator line made a blank line so that fortunes are paragraphs (the benchmark's documents), cut to
tinyshakespeare's 1,115,394 characters.
"""

import sys
from pathlib import Path

FORTUNES = Path("/usr/share/games/fortunes")
CHARACTERS = 1_115_394  # tinyshakespeare's length
SKIPPED = {"art", "ascii-art"}  # pictures, not text


def fortunes_text(folder: Path = FORTUNES) -> str:
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.is_symlink()]
    parts = []
    for path in files:
        if path.suffix in (".dat", ".u8") or path.name in SKIPPED:
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        parts.append("\n".join("" if line.strip() == "%" else line for line in lines))
    return "\n\n".join(parts)[:CHARACTERS]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python benchmarks/fortunes_corpus.py OUT.txt", file=sys.stderr)
        return 2
    if not FORTUNES.is_dir():
        print(f"{FORTUNES} not found: apt-get install fortunes fortunes-min", file=sys.stderr)
        return 2
    text = fortunes_text()
    Path(argv[0]).write_text(text, encoding="utf-8")
    print(f"{argv[0]}: {len(text):,} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
