"""Tokenization on the curation engine (`executor: local | slurm`): datatrove stages that write token shards
per source, for corpora a single machine's `Dataset.map` would take too long over.

    launcher  the BPE trains on the training split (or `tokenizer_max_documents` of it, drawn from across the
              corpus), before any stage runs
    tokenize  N tasks: reader (each file split between tasks by bytes) -> [benchmark decontamination]
              -> `SplitSourceTokenizer`: per task, one datatrove token file per (split, source), shuffled
    merge     1 task: datatrove's `DocumentTokenizerMerger` per (split, source) -> `tokens/<split>/<source>/`,
              then `stats.json`, last: its presence means the folder is complete

The files are datatrove's format (`.ds`: the token stream, uint16 or uint32; `.ds.index`: document ends),
which training reads with datatrove's `DatatroveFolderDataset` and mixes across sources at load time
(training/mixture.py): a new mixture needs no new tokenization. A document's tokens are those of the
`datasets` path (packing.py): its text encoded without special tokens, then EOS, and its split comes from the
same hash of its id. Both stages are datatrove executors: a run killed and started again redoes only the
tasks that did not finish, and each task writes the same bytes whenever it runs (its shuffles are seeded by
the recipe's seed and the task's rank).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.tokens.merger import DocumentTokenizerMerger
from datatrove.pipeline.tokens.tokenizer import TokenizedFile
from datatrove.utils.batching import batched
from datatrove.utils.tokenization import PipelineStepWithTokenizer
from tokenizers import Tokenizer

from hfscratch.core.allocator import check_loaded
from hfscratch.core.recipes import RecipeError
from hfscratch.curation.executors import Stage
from hfscratch.tokenization.decontamination import ContaminationReport, Match, NgramIndex
from hfscratch.tokenization.documents import as_plain_text, encoder_threads, file_tag, is_validation

SPLITS = ("train", "validation")
TOKENS_DIR = "tokens"  # tokens/<split>/<source>/NNN_<source>.ds: what training reads
TOKENIZER_FILE = "tokenizer/tokenizer.json"  # in the output folder
PARTS_DIR = ".parts"  # per-task files of the tokenize stage, merged and removed by the merge stage
SAFE_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a source tag names a folder


def corpus_adapter(reader: Any, data: dict, path: str, id_in_file: int | str) -> dict:
    """A record as the `datasets` path reads it (corpus.py): its id, else `STEM/N`; its source tag from
    `metadata.source` or `source`, else the file's stem. `path` is the file's name in its folder."""
    metadata = data.get("metadata") or {}
    given_id = data.get("id")
    return {
        "text": data.get(reader.text_key, ""),
        "id": str(given_id) if given_id is not None and given_id != "" else f"{file_tag(Path(path))}/{id_in_file}",
        "metadata": {"source": str(metadata.get("source") or data.get("source") or file_tag(Path(path)))},
    }


def corpus_readers(fmt: str, files: list[Path]) -> list[PipelineStep]:
    """One datatrove reader per file (readers chain), each file split between the tasks by bytes (JSON
    lines) or row groups (Parquet), as curation reads a source (curation/sources.py)."""
    from hfscratch.curation.sources import SafeJsonlReader, SafeParquetReader

    if fmt not in ("jsonl", "parquet"):
        raise RecipeError(
            f"key 'executor': the datatrove stages read JSON lines or Parquet, and the corpus holds {fmt} files; "
            "use executor: datasets for .txt corpora"
        )
    reader = SafeJsonlReader if fmt == "jsonl" else SafeParquetReader
    return [reader(str(f.parent), glob_pattern=f.name, adapter=corpus_adapter) for f in files]


def check_tag(source: str) -> str:
    if not SAFE_TAG.match(source):
        raise ValueError(f"source tag {source!r} cannot name a token folder; expected letters, digits, '.', '_' or '-'")
    return source


class BenchmarkDecontamination(BaseFilter):
    """The benchmark n-gram check of decontamination.py as a datatrove filter: documents that share an
    n-gram with a benchmark item are removed (or, `remove=False`, only reported). Each task writes its
    flagged documents to `report_folder/RANK.jsonl`, which the merge stage sums into stats.json."""

    name = "🧹 Benchmark n-grams"

    def __init__(self, index: NgramIndex, remove: bool, report_folder: str) -> None:
        super().__init__()
        self.index, self.remove, self.report_folder = index, remove, report_folder
        self.flagged: list[dict] = []

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        matches = self.index.matches(doc.text)
        if not matches:
            return True
        self.flagged.append({"id": doc.id, "matches": {name: [m.ngram_hits, m.items] for name, m in matches.items()}})
        return (False, "contaminated") if self.remove else True

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        yield from super().run(data, rank, world_size)
        folder = Path(self.report_folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{rank:05d}.jsonl").write_text("".join(json.dumps(f) + "\n" for f in self.flagged))


def contamination_report(index: NgramIndex, report_folder: Path, documents: int) -> ContaminationReport:
    """The tasks' flagged documents, summed as the `datasets` path sums them."""
    report = ContaminationReport(index)
    for file in sorted(report_folder.glob("*.jsonl")):
        for line in file.read_text().splitlines():
            flagged = json.loads(line)
            report.add(flagged["id"], {name: Match(hits, items) for name, (hits, items) in flagged["matches"].items()})
    report.documents = documents
    return report


class SplitSourceTokenizer(PipelineStepWithTokenizer):
    """datatrove's `DocumentTokenizer`, writing one token file per (split, source) instead of one per task.

    Each document is encoded as the `datasets` path encodes it (`encode_batch_fast`, no special tokens, then
    EOS) into `PARTS/<split>/<source>/RANK_unshuffled.ds`; at the end each file's documents are shuffled into
    `..._shuffled.ds` with datatrove's `TokenizedFile.copy`, by a generator seeded with (seed, rank).
    Counts per (split, source) of documents, tokens (EOS included) and characters go to the task's stats.
    `threads` is the encoder's thread count, the cores the task has to itself (one where tasks share them);
    `allocator` the recipe's: the task fails where it asked for one that its process does not run, and counts
    the one it ran (`allocator/<name>`).
    """

    name = "✍️ Tokenize by split and source"
    type = "🔢 - TOKENIZER"

    def __init__(
        self,
        output_folder: str,
        tokenizer_file: str,
        eos_token: str,
        validation_fraction: float,
        seed: int,
        threads: int = 1,
        allocator: str = "auto",
    ) -> None:
        super().__init__(tokenizer_file)
        self.output_folder, self.eos_token = output_folder, eos_token
        self.validation_fraction, self.seed, self.threads = validation_fraction, seed, threads
        self.allocator = allocator
        self.batch_size = 1000

    @cached_property
    def tokenizer(self) -> Tokenizer:
        # As the `datasets` path reads texts: "<|end_of_text|>" in a document is text, not a document end.
        return as_plain_text(Tokenizer.from_file(self.tokenizer_name_or_path))

    def token_file(self, key: tuple[str, str], rank: int) -> TokenizedFile:
        split, source = key
        return TokenizedFile(
            self.output_folder,
            f"{split}/{source}/{rank:05d}_unshuffled.ds",
            token_size=self.token_size,
            # The merger reads the token size from this metadata (else it assumes 2 bytes); the name is
            # relative, so the files do not depend on where the output folder is.
            tokenizer_name_or_path=TOKENIZER_FILE,
            save_final_metadata=True,
        )

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self.stat_update(f"allocator/{check_loaded(self.allocator)}")
        with encoder_threads(self.threads):
            yield from self.tokenize(data, rank)

    def tokenize(self, data: DocumentsPipeline, rank: int) -> DocumentsPipeline:
        eos = self.tokenizer.token_to_id(self.eos_token)
        dtype = np.uint16 if self.token_size == 2 else np.uint32
        files: dict[tuple[str, str], TokenizedFile] = {}
        for batch in batched(data, self.batch_size):
            with self.track_time(unit="batch"):
                encodings = self.tokenizer.encode_batch_fast([d.text for d in batch], add_special_tokens=False)
                groups: dict[tuple[str, str], list[tuple[Document, list[int]]]] = defaultdict(list)
                for document, encoding in zip(batch, encodings):
                    split = "validation" if is_validation(document.id, self.validation_fraction) else "train"
                    groups[split, check_tag(document.metadata["source"])].append((document, encoding.ids))
                for key, members in groups.items():
                    if key not in files:
                        files[key] = self.token_file(key, rank)
                    # One write per (split, source) and batch: the documents' tokens, each followed by EOS.
                    lengths = np.array([len(ids) + 1 for _, ids in members])
                    stream = np.fromiter(
                        chain.from_iterable(chain(ids, (eos,)) for _, ids in members), dtype=dtype, count=lengths.sum()
                    )
                    files[key].write_bytes(stream.tobytes(), doc_ends=np.cumsum(lengths).tolist())
                    prefix = f"{key[0]}/{key[1]}"
                    self.stat_update(f"{prefix}/documents", value=len(members))
                    self.stat_update(f"{prefix}/tokens", value=int(lengths.sum()))
                    self.stat_update(f"{prefix}/characters", value=sum(len(document.text) for document, _ in members))
        rng = np.random.default_rng([self.seed, rank])  # the same shuffle however the tasks are scheduled
        for (split, source), unshuffled in sorted(files.items()):
            unshuffled.close()
            unshuffled.copy(
                f"{split}/{source}/part", rng.permutation(len(unshuffled.doc_ends)), rank=rank, sub_filename="shuffled"
            )
            unshuffled.cleanup()
        return
        yield  # a generator, as every step: nothing goes on down the pipeline


class MergeShards(PipelineStep):
    """The merge stage, in one task: datatrove's `DocumentTokenizerMerger` for each (split, source) folder of
    the tokenize stage's files, into `tokens/<split>/<source>/` (documents shuffled across the tasks' files,
    seeded), then `finish` (stats.json) and the per-task files removed."""

    name = "🗃 Merge token shards"
    type = "🔢 - TOKENIZER"

    def __init__(self, out: str, seed: int, finish: Any) -> None:
        super().__init__()
        self.out, self.seed, self.finish = out, seed, finish

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import shutil

        out = Path(self.out)
        for part in sorted(p for p in (out / PARTS_DIR).glob("*/*") if p.parent.name in SPLITS):
            if not any(part.glob("*.ds")):
                continue
            target = out / TOKENS_DIR / part.parent.name / part.name
            shutil.rmtree(target, ignore_errors=True)  # a merge killed half-way leaves files a rerun replaces
            merger = DocumentTokenizerMerger(
                str(part), str(target), save_filename=part.name, seed=self.seed, progress=False
            )
            merger.run(None, 0, 1)
            self.stat_update(f"{part.parent.name}/{part.name}/tokens", value=merger.stats["tokens"].total)
        self.finish()
        shutil.rmtree(out / PARTS_DIR, ignore_errors=True)
        return
        yield


def task_cores(args: Any) -> int:
    """The cores each tokenize task has to itself: a Slurm task its `slurm_cpus_per_task`; a local task its
    share of this machine's cores among the tasks that run side by side."""
    if args.executor == "slurm":
        return args.slurm_cpus_per_task
    return max(1, (os.cpu_count() or 1) // min(args.tasks, args.workers()))


def tokenize_stages(
    readers: list[PipelineStep],
    decontamination: BenchmarkDecontamination | None,
    tokenizer_file: str,
    eos_token: str,
    args: Any,
    finish: Any,
) -> list[Stage]:
    """The two stages of a sharded tokenization; `finish()` writes stats.json at the end of the merge."""
    out = str(Path(args.out).resolve())
    tokenizer = SplitSourceTokenizer(
        f"{out}/{PARTS_DIR}",
        tokenizer_file,
        eos_token,
        args.validation_fraction,
        args.seed,
        task_cores(args),
        args.allocator,
    )
    steps = [*readers, *([decontamination] if decontamination else []), tokenizer]
    return [Stage("tokenize", steps, args.tasks), Stage("merge", [MergeShards(out, args.seed, finish)], 1)]
