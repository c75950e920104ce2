"""De-duplication on planted duplicates: exact copies all go, near copies >= 90%, distinct documents none."""

from curation_corpora import dedup_corpus, read_output, write_jsonl


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
    assert near_removed / near >= 0.9, f"near duplicates removed: {near_removed}/{near}"
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
