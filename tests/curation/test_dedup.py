"""De-duplication on planted duplicates: exact copies all go, near copies >= 95%, distinct documents none.

The MinHash settings were tuned on the standard library's reference topics (`dedup_corpus`, below, and
benchmarks/near_dedup.py); the recall test builds its planted set from another text, Shakespeare.
"""

import functools
import random

import pytest
from curation_corpora import dedup_corpus, read_output, write_jsonl

from hfscratch.curation.dedup import bands_for, candidate_probability
from hfscratch.curation.pipeline import CurateArguments
from hfscratch.curation.planted import (
    NEAR_KINDS,
    jaccard,
    planted_set,
    score_dedup,
    shingle_set,
    text_file_documents,
)


def test_exact_and_minhash_dedup_on_planted_duplicates(tmp_path, curate):
    records, clusters = dedup_corpus()
    path = write_jsonl(records, tmp_path / "corpus.jsonl")
    out, stats = curate([{"type": "jsonl", "path": str(path), "tag": "planted"}], exact_dedup=True, minhash_dedup=True)
    kept = {r["id"] for r in read_output(out)}

    exact = near = exact_removed = near_removed = 0
    for original, members in clusters.items():
        survivors = [m for m in members if m in kept]
        assert len(survivors) >= 1, f"every copy of distinct document {original} was removed"
        for copy in members[1:]:
            if "/exact" in copy:
                exact += 1
            else:
                near += 1
        removed = len(members) - len(survivors)
        if any("/exact" in m for m in members):
            exact_removed += removed
        else:
            near_removed += removed
    assert exact_removed == exact, "every exact duplicate (also in other case and spacing) is removed"
    assert near_removed / near >= 0.95, f"near duplicates removed: {near_removed}/{near}"
    print(f"exact duplicates removed {exact_removed}/{exact}, near duplicates removed {near_removed}/{near}")
    steps = [row["step"] for row in stats["funnel"]]
    assert any("exact" in s.lower() for s in steps) and any("minhash" in s.lower() for s in steps)


def test_exact_dedup_alone_keeps_near_duplicates(tmp_path, curate):
    records, clusters = dedup_corpus()
    path = write_jsonl(records, tmp_path / "corpus.jsonl")
    out, _ = curate([{"type": "jsonl", "path": str(path)}], exact_dedup=True)
    kept = {r["id"] for r in read_output(out)}
    for members in clusters.values():
        survivors = [m for m in members if m in kept]
        assert len([m for m in survivors if m == members[0] or "/exact" in m]) == 1  # one of the exact copies
        assert all(m in kept for m in members if m != members[0] and "/exact" not in m)  # near copies stay


def test_minhash_settings_follow_from_the_threshold():
    """The defaults are the S-curve derivation the recipe states: the fewest bands at 3 rows that make a pair
    at the threshold a candidate with 99% probability."""
    args = CurateArguments()
    assert (args.minhash_threshold, args.minhash_hashes_per_bucket) == (0.5, 3)
    assert args.minhash_buckets == bands_for(0.5, rows=3) == 35
    assert candidate_probability(0.5, 35, 3) >= 0.99 > candidate_probability(0.5, 34, 3)


@functools.cache
def distinct_chunks(path: str) -> list[str]:
    return text_file_documents(path)


@pytest.fixture
def shakespeare_documents(shared_data):
    return distinct_chunks(str(shared_data / "corpora" / "tinyshakespeare.txt"))


def test_near_copies_of_text_it_was_not_tuned_on_are_removed(tmp_path, curate, shakespeare_documents):
    """>= 300 groups of Shakespeare (distinct documents share under 5% of their shingles): every kind of near
    copy >= 95% removed, exact copies all, and no distinct document."""
    planted = planted_set(shakespeare_documents, seed=1)
    assert len(planted.groups) >= 300
    path = write_jsonl(planted.records, tmp_path / "planted.jsonl")
    out, _ = curate([{"type": "jsonl", "path": str(path), "tag": "planted"}], exact_dedup=True, minhash_dedup=True)
    score = score_dedup(planted, {r["id"] for r in read_output(out)})
    print("\n".join(f"{kind}: {removed} ({recall})" for kind, removed, recall in score.table_rows()))
    assert score.distinct_removed == 0
    assert score.recall("exact") == 1.0
    for kind in NEAR_KINDS:
        assert score.recall(kind) >= 0.95, (kind, score.removed[kind], score.planted[kind])


def test_candidate_pairs_below_the_threshold_are_kept(tmp_path, curate, shakespeare_documents):
    """Distinct documents that share a passage (Jaccard 0.15-0.45) are often LSH candidates; the exact check
    of their shingle sets keeps both. Without the check (threshold 0), LSH alone removes some of them."""
    rng = random.Random(0)
    records = []
    for i in range(0, 80, 2):
        a, b = shakespeare_documents[i], shakespeare_documents[i + 1]
        words, others = a.split(" "), b.split(" ")  # half of a's words, then as many of b's
        shared = " ".join(words[: len(words) // 2] + others[: len(words) // 2])
        similarity = jaccard(shingle_set(a, 3), shingle_set(shared, 3))
        assert 0.15 < similarity < 0.45, similarity
        records += [{"id": f"{i}/a", "text": a}, {"id": f"{i}/shared", "text": shared}]
    rng.shuffle(records)
    path = write_jsonl(records, tmp_path / "overlap.jsonl")
    source = [{"type": "jsonl", "path": str(path)}]

    out, stats = curate(source, minhash_dedup=True)
    assert len(read_output(out)) == len(records)
    check = next(s for s in stats["stages"]["minhash-verify"] if "candidate_pairs" in s["stats"])["stats"]
    assert check["rejected_pairs"]["total"] > 0 and "verified_pairs" not in check

    unchecked, _ = curate(source, minhash_dedup=True, minhash_threshold=0.0, output="unchecked")
    removed = len(records) - len(read_output(unchecked))
    print(f"LSH alone removed {removed} of {len(records)} distinct documents; verified, none")
    assert removed > 0
