"""Benchmark: the OCR engine on real scanned receipts (SROIE), scored against their line-level ground truth.

    python benchmarks/ocr_real.py DIR [--numbers odd|even|all] [--below N] [--from N] [--save OUT | --saved OUT]

DIR holds the receipts of the public repository zzzDavid/ICDAR-2019-SROIE as `img/NNN.jpg` and `box/NNN.csv`
(or `data/img`, `data/box`, the repository's own layout); docs/sroie.md says how to bring them onto a machine.
They are never committed. The project reports the **odd-numbered** receipts; the even ones are for tuning.

Scores (`pipelines.documents.ocr.word_scores`, `receipt_cer`):
- words: precision, recall and F1 over bags of words (whitespace-separated tokens, upper case, exact match),
  summed over all receipts (micro average);
- CER: edit distance over the truth's length, upper case, every run of whitespace one space, the truth's
  lines in the file's order; summed over all receipts.
`--save OUT` writes each receipt's OCR text to `OUT/NNN.txt`; `--saved OUT` scores such texts again without OCR
(the receipts of the selection that have one), e.g. to compare two engines on the same receipts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def receipts(root: Path, numbers: str, below: int | None, start: int | None) -> list[tuple[int, Path, Path]]:
    """(number, image, truth) of the receipts in `root` that the options select, in number order."""
    if (root / "data" / "img").is_dir():
        root = root / "data"
    if not (root / "img").is_dir() or not (root / "box").is_dir():
        sys.exit(f"error: {root} has no img/ and box/ folders (see docs/sroie.md)")
    out = []
    for image in sorted((root / "img").glob("*.jpg")):
        if not image.stem.isdigit() or not (root / "box" / f"{image.stem}.csv").is_file():
            continue
        n = int(image.stem)
        if numbers != "all" and n % 2 != (numbers == "odd"):
            continue
        if (below is not None and n >= below) or (start is not None and n < start):
            continue
        out.append((n, image, root / "box" / f"{image.stem}.csv"))
    return out


def truth_text(csv_path: Path) -> str:
    """The receipt's text lines: each CSV line is 8 corner coordinates, then the text (which may hold commas)."""
    lines = []
    for raw in csv_path.read_bytes().decode("utf-8", errors="replace").splitlines():
        parts = raw.split(",", 8)
        if len(parts) == 9 and parts[8].strip():
            lines.append(parts[8].strip())
    return "\n".join(lines)


def main() -> None:
    from pipelines.documents.ocr import engine_name, receipt_cer, shared_engine, word_scores
    from pipelines.documents.safety import Limits, open_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--numbers", choices=["odd", "even", "all"], default="odd",
                        help="which receipts (the project reports the odd ones)")
    parser.add_argument("--below", type=int, help="only receipts numbered below this")
    parser.add_argument("--from", dest="start", type=int, help="only receipts numbered from this on")
    parser.add_argument("--save", type=Path, help="write each receipt's OCR text to this folder")
    parser.add_argument("--saved", type=Path, help="score the texts a --save run wrote to this folder, without OCR")
    parser.add_argument("--ocr-threads", type=int, default=0)
    args = parser.parse_args()
    chosen = receipts(args.dir, args.numbers, args.below, args.start)
    if args.saved:
        chosen = [r for r in chosen if (args.saved / f"{r[0]:03d}.txt").is_file()]
    if not chosen:
        sys.exit(f"error: no receipts selected in {args.dir}")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    engine = None if args.saved else shared_engine(args.ocr_threads)
    matched = predicted = true_words = edits = chars = 0
    seconds = 0.0
    limits = Limits()
    for n, image, box in chosen:
        if engine is None:
            text = (args.saved / f"{n:03d}.txt").read_text()
        else:
            result = engine.read(open_image(image.read_bytes(), limits))
            text, seconds = result.text, seconds + result.seconds
        truth = truth_text(box)
        m, p, t = word_scores(text, truth)
        e, c = receipt_cer(text, truth)
        matched, predicted, true_words, edits, chars = matched + m, predicted + p, true_words + t, edits + e, chars + c
        if args.save:
            (args.save / f"{n:03d}.txt").write_text(text + "\n")
    precision = matched / predicted if predicted else 0.0
    recall = matched / true_words if true_words else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    one, _, _ = os.getloadavg()
    source = f"texts saved in {args.saved}" if engine is None else f"{engine_name()}, {engine.threads} thread(s)"
    print(f"OCR ({source}) on {len(chosen)} SROIE receipts "
          f"({args.numbers}{f', below {args.below}' if args.below else ''}"
          f"{f', from {args.start}' if args.start else ''}; {chosen[0][0]:03d}..{chosen[-1][0]:03d}):")
    print(f"  words: precision {precision:.4f}, recall {recall:.4f}, F1 {f1:.4f} "
          f"({matched:,} of {true_words:,} true words found, {predicted:,} read)")
    print(f"  character error rate {edits / chars:.4f} over {chars:,} characters")
    if engine is not None:
        print(f"  {seconds / len(chosen):.2f} s/receipt (load average {one:.2f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"  total {time.perf_counter() - start:.0f} s")
