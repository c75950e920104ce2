"""Near-duplicate removal on planted sets: recall per kind of copy and distinct documents lost.

Each planted set is real prose cut into distinct documents, one group per document: the original and one copy
(exact, ~3% of words replaced, paragraphs reordered, boilerplate added, or all three), or no copy
(hfscratch/curation/planted.py). The real pipeline runs on it (`run_curation` with exact and MinHash dedup
only) and the survivors are scored. Two corpora: the standard library's reference topics, on which the recipe's
MinHash settings were tuned, and Shakespeare (../shared/data), on which the tests check them.

    python benchmarks/near_dedup.py                                     # the recipe's settings
    python benchmarks/near_dedup.py --ngrams 5 --bands 14 --rows 8 --threshold 0   # datatrove's defaults
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from hfscratch.core.formatting import format_table
from hfscratch.curation.dedup import candidate_probability
from hfscratch.curation.pipeline import CurateArguments, run_curation
from hfscratch.curation.planted import PlantedSet, planted_set, reference_topics, score_dedup, text_file_documents

REPO = Path(__file__).resolve().parent.parent
SHAKESPEARE = REPO.parent / "shared" / "data" / "corpora" / "tinyshakespeare.txt"
ONLY_DEDUP = dict.fromkeys(
    ("url_filter", "language_filter", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality"), False
)


def curate_planted(planted: PlantedSet, folder: Path, **minhash: float) -> set[str]:
    """Run exact + MinHash dedup (and nothing else) on the planted set; the ids that survive."""
    corpus = folder / "planted.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in planted.records), encoding="utf-8")
    args = CurateArguments(
        output_dir=str(folder / "run"),
        sources=[{"type": "jsonl", "path": str(corpus), "tag": "planted"}],
        tasks=2,
        workers=1,
        min_doc_chars=1,
        pii_redaction=False,
        **ONLY_DEDUP,
        **minhash,
    )
    run_curation(args)
    documents = sorted((folder / "run" / "documents").glob("*.jsonl"))
    return {json.loads(line)["id"] for file in documents for line in file.open(encoding="utf-8")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = CurateArguments()
    parser.add_argument("--ngrams", type=int, default=defaults.minhash_ngrams)
    parser.add_argument("--bands", type=int, default=defaults.minhash_buckets)
    parser.add_argument("--rows", type=int, default=defaults.minhash_hashes_per_bucket)
    parser.add_argument("--threshold", type=float, default=defaults.minhash_threshold)
    options = parser.parse_args()
    minhash = {
        "minhash_ngrams": options.ngrams,
        "minhash_buckets": options.bands,
        "minhash_hashes_per_bucket": options.rows,
        "minhash_threshold": options.threshold,
    }
    curves = ", ".join(f"P({s}) = {candidate_probability(s, options.bands, options.rows):.3f}" for s in (0.3, 0.5, 0.7))
    print(f"MinHash {options.ngrams}-word shingles, {options.bands} bands x {options.rows} rows ({curves}), ", end="")
    print(f"verified at Jaccard >= {options.threshold}" if options.threshold else "no verification")
    corpora = {"reference topics (tuning)": reference_topics}
    if SHAKESPEARE.is_file():
        corpora["Shakespeare (test)"] = lambda: text_file_documents(str(SHAKESPEARE))
    for name, documents in corpora.items():
        planted = planted_set(documents(), seed=0)
        folder = Path(tempfile.mkdtemp(prefix="near-dedup-"))
        try:
            start = time.perf_counter()
            score = score_dedup(planted, curate_planted(planted, folder, **minhash))
            seconds = time.perf_counter() - start
        finally:
            shutil.rmtree(folder)
        print(f"\n{name}: {score.groups} groups, {len(planted.records)} documents, {seconds:.0f} s")
        print(format_table(score.table_rows(), ["copies", "removed", "recall"]))


if __name__ == "__main__":
    main()
