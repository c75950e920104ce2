"""Curate and tokenize real Debian documentation at several sizes; print throughput per core and peak memory.

    python benchmarks/data_scale.py --sizes 100 300 [1000] [--work runs/data-scale]

For each size (MB of corpus JSON lines, built by build_debian_corpus.py as nested prefixes of one corpus):
`hfscratch curate` with the shipped `debian-docs` recipe (its paths pointed at that corpus), then
`hfscratch tokenize` of the curated documents, both ways (`Dataset.map` to Arrow blocks, and the datatrove stages
to token shards with as many tasks as the recipe's workers), each run as `nice -n 19` subprocesses (the machine
is shared).
Printed per size: MB/s per core of every curation stage (the MB entering it: the corpus's bytes for the first
stage, documents' text for the others) and of the filter and MinHash-signature stages' steps (from datatrove's
per-step times), end-to-end MB/s per core and its share of the steady state (the filter stage's MB/s per core), tokenize
tokens/s, and the peak resident memory of each run (summed over the process tree, sampled every 0.2 s, and of
its largest process). Results also go to WORK/data_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_debian_corpus import PACKAGES, build  # noqa: E402

from hfscratch.core.resources import resource_path  # noqa: E402

RECIPE = resource_path("recipes/curate/debian-docs.yaml")

STAGE_LINE = re.compile(r"^(?P<stage>[a-z-]+): .*\((?P<seconds>[\d.]+) s\)$")


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


class TreeSampler:
    """Samples a process and all its descendants until it exits: peak resident memory (summed over the tree,
    and of its largest process) and CPU seconds (each process's user + system time when last seen; a process
    that ends between two samples loses at most one interval). getrusage(RUSAGE_CHILDREN) would miss the
    workers of multiprocessing's forkserver, which is never waited for."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval = pid, interval
        self.tree_bytes = self.process_bytes = 0
        self.cpu: dict[tuple[int, float], float] = {}  # (pid, start time) -> CPU seconds
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            while root.is_running() and root.status() != psutil.STATUS_ZOMBIE:
                sizes = []
                for process in [root, *root.children(recursive=True)]:
                    try:
                        with process.oneshot():
                            sizes.append(process.memory_info().rss)
                            times = process.cpu_times()
                            self.cpu[(process.pid, process.create_time())] = times.user + times.system
                    except psutil.Error:
                        pass
                self.tree_bytes = max(self.tree_bytes, sum(sizes))
                self.process_bytes = max(self.process_bytes, max(sizes, default=0))
                time.sleep(self.interval)
        except psutil.Error:
            return


def run_measured(command: list[str], log: Path) -> dict:
    """Run `nice -n 19 COMMAND`, its output to `log`: wall seconds, CPU seconds and peak memory of its tree."""
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(["nice", "-n", "19", *command], stdout=out, stderr=subprocess.STDOUT)
        tree = TreeSampler(process.pid)
        code = process.wait()
    wall = time.perf_counter() - start
    tree.thread.join(timeout=1)
    if code != 0:
        sys.exit(f"data_scale: {' '.join(command)} failed with exit code {code}; see {log}")
    cpu = sum(tree.cpu.values())
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_tree_mb": tree.tree_bytes / 1e6,
        "peak_process_mb": tree.process_bytes / 1e6,
    }


def recipe_for(corpus: Path, output_dir: Path, target: Path) -> Path:
    recipe = yaml.safe_load(RECIPE.read_text())
    for source in recipe["sources"]:
        source["path"] = str(corpus / Path(source["path"]).name)  # html/ and text/
    recipe["output_dir"] = str(output_dir)
    target.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return target


def stage_table(curated: Path, stdout: str, corpus_mb: float, workers: int) -> list[dict]:
    """Per stage: wall seconds (from the console), tasks, MB in and MB/s per busy core."""
    from hfscratch.curation.report import merged_stats

    rows = []
    for line in stdout.splitlines():
        match = STAGE_LINE.match(line.strip())
        if not match:
            continue
        stage, seconds = match["stage"], float(match["seconds"])
        logs = curated / "logs" / stage
        tasks = len(list((logs / "stats").glob("*.json")))
        steps = merged_stats(logs) or []
        readers = [s for s in steps if s["name"].startswith("📖")]
        if stage == "filter":
            mb_in = corpus_mb
        elif readers:
            mb_in = sum(s["stats"].get("doc_len", {}).get("total", 0) for s in readers) / 1e6
        else:
            mb_in = None  # works on signatures, not documents
        cores = min(tasks, workers, os.cpu_count() or 1)
        rate = mb_in / (seconds * cores) if mb_in is not None and seconds > 0 else None
        rows.append({"stage": stage, "wall_s": seconds, "tasks": tasks, "mb_in": mb_in, "mb_s_per_core": rate})
    return rows


def stage_steps(curated: Path, stage: str) -> list[dict]:
    """A stage's steps: MB of text in, seconds summed over tasks (one core's time), MB/s per core."""
    from hfscratch.curation.report import merged_stats

    logs = curated / "logs" / stage
    per_task = [json.loads(f.read_text()) for f in sorted((logs / "stats").glob("*.json"))]
    rows, flowing = [], 0.0  # characters of the documents that reach the next step
    for i, step in enumerate(merged_stats(logs) or []):
        out = step["stats"].get("doc_len", {}).get("total", 0)
        if step["name"].startswith("📖"):  # a reader passes the documents before it through and adds its own
            flowing += out
            continue
        seconds = sum((task[i].get("time_stats") or {}).get("total", 0) for task in per_task)
        if seconds > 0 and flowing:
            rows.append(
                {"step": step["name"], "seconds": seconds, "mb_in": flowing / 1e6, "mb_s": flowing / 1e6 / seconds}
            )
        flowing = out
    return rows


def measure(size_mb: float, work: Path, workers: int) -> dict:
    corpus = work / f"corpus-{size_mb:g}mb"
    manifest = build(corpus, PACKAGES, size_mb)
    curated, tokenized = work / f"curate-{size_mb:g}mb", work / f"tokenize-{size_mb:g}mb"
    recipe = recipe_for(corpus, curated, work / f"debian-docs-{size_mb:g}mb.yaml")
    result: dict = {"size_mb": size_mb, "corpus_mb": manifest["mb"], "corpus_documents": manifest["documents"]}
    result["load_before"] = load()
    curate_log = work / f"curate-{size_mb:g}mb.log"
    result["curate"] = run_measured([sys.executable, "-m", "hfscratch.cli", "curate", str(recipe)], curate_log)
    stdout = curate_log.read_text()
    if "Already curated" in stdout:
        sys.exit(f"data_scale: {curated} was curated before; remove {work} to measure again")
    result["stages"] = stage_table(curated, stdout, manifest["mb"], workers)
    result["filter_steps"] = stage_steps(curated, "filter")
    result["minhash_steps"] = stage_steps(curated, "minhash-signatures")  # its one step, in steady state
    from hfscratch.curation.artifacts import CurationStats

    stats = CurationStats.read(curated)
    result["curated_documents"] = sum(source.documents_kept for source in stats.sources.values())
    result["curated_mb"] = sum(f.stat().st_size for f in (curated / "documents").glob("*")) / 1e6
    cores = min(workers, os.cpu_count() or 1)
    result["curate"]["mb_s_per_core"] = manifest["mb"] / (result["curate"]["wall_s"] * cores)
    result["curate"]["mb_per_cpu_s"] = manifest["mb"] / result["curate"]["cpu_s"]
    # Steady state: the filter stage (reading, extraction, the quality chain), which holds most of the work.
    (filter_stage,) = [row for row in result["stages"] if row["stage"] == "filter"]
    result["curate"]["of_steady_state"] = result["curate"]["mb_s_per_core"] / filter_stage["mb_s_per_core"]
    from hfscratch.tokenization.artifacts import TokenizeStats

    for key, executor in (("tokenize", "datasets"), ("tokenize_shards", "local")):  # Arrow blocks; token shards
        out = tokenized if executor == "datasets" else Path(f"{tokenized}-shards")
        tokenize = [sys.executable, "-m", "hfscratch.cli", "tokenize", "--corpus", str(curated), "--out", str(out)]
        tokenize += ["--num_proc", str(workers), "--executor", executor, "--tasks", str(workers)]
        result[key] = run_measured(tokenize, work / f"{out.name}.log")
        tokens = TokenizeStats.read(out)
        total = tokens.train["tokens"] + tokens.validation["tokens"]
        t = result[key]
        t |= {"tokens": total, "tokens_per_s": total / t["wall_s"], "tokens_per_cpu_s": total / t["cpu_s"]}
    result["load_after"] = load()
    return result


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_tables(results: list[dict]) -> None:
    header = ["corpus MB", "docs", "curated MB", "curate s", "end-to-end MB/s/core", "of steady state"]
    header += ["MB per CPU-s"]
    header += ["curate peak RSS MB (tree / largest)"]
    for path in ("datasets", "token shards"):
        header += [f"tokenize ({path}) s", "tokens/s", "tokens per CPU-s", "peak RSS MB (tree / largest)"]
    header += ["tokens", "load before / after"]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in results:
        c = r["curate"]
        cells = [f"{r['corpus_mb']:.0f}", f"{r['corpus_documents']:,}", f"{r['curated_mb']:.1f}", f"{c['wall_s']:.0f}"]
        cells += [f"{c['mb_s_per_core']:.3f}", f"{c['of_steady_state']:.0%}", f"{c['mb_per_cpu_s']:.3f}"]
        cells += [f"{c['peak_tree_mb']:,.0f} / {c['peak_process_mb']:,.0f}"]
        for t in (r["tokenize"], r["tokenize_shards"]):
            cells += [f"{t['wall_s']:.0f}", f"{t['tokens_per_s']:,.0f}", f"{t['tokens_per_cpu_s']:,.0f}"]
            cells += [f"{t['peak_tree_mb']:,.0f} / {t['peak_process_mb']:,.0f}"]
        cells += [f"{r['tokenize']['tokens']:,}", f"{r['load_before']} / {r['load_after']}"]
        print("| " + " | ".join(cells) + " |")
    stages = [row["stage"] for row in results[0]["stages"]]
    print("\nMB/s per core by stage (MB in: corpus bytes for filter, documents' text after; tasks; wall s)\n")
    print("| stage | " + " | ".join(f"{r['corpus_mb']:.0f} MB corpus" for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for i, stage in enumerate(stages):
        cells = []
        for r in results:
            row = r["stages"][i]
            cells.append(
                f"{fmt(row['mb_s_per_core'], '.3f')} ({fmt(row['mb_in'], '.1f')} MB, {row['tasks']} tasks, "
                f"{row['wall_s']:.1f} s)"
            )
        print(f"| {stage} | " + " | ".join(cells) + " |")
    print(
        "\nFilter and MinHash stages, per step: MB/s of text on one core (datatrove's step times summed over tasks)\n"
    )
    print("| step | " + " | ".join(f"{r['corpus_mb']:.0f} MB corpus" for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for key in ("filter_steps", "minhash_steps"):
        for i, step in enumerate(results[0][key]):
            cells = [f"{r[key][i]['mb_s']:.2f}" if i < len(r[key]) else "-" for r in results]
            print(f"| {step['step']} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[100, 300], help="Corpus sizes in MB.")
    parser.add_argument("--work", default="runs/data-scale", help="Folder for corpora, runs and logs.")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    recipe = yaml.safe_load(RECIPE.read_text())
    workers = min(recipe["workers"], recipe["tasks"])
    results = []
    for size in args.sizes:
        print(f"{size:g} MB: load {load()}", flush=True)
        results.append(measure(size, work, workers))
        print(json.dumps(results[-1]), flush=True)
        (work / "data_scale.json").write_text(json.dumps(results, indent=2) + "\n")
    print_tables(results)


if __name__ == "__main__":
    main()
