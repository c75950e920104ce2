"""Our own datatrove blocks, for what the stock ones cannot do offline or do not do at all.

- `RegexWordTokenizer`: a word tokenizer for datatrove's heuristic filters, 7x faster than spaCy.
- `FastGopherRepetitionFilter`, `FastGopherQualityFilter`, `FastC4QualityFilter`, `FastFineWebQualityFilter`:
  datatrove's heuristic filters with the same rules, thresholds, decisions and stats, computed in fewer passes.
- `DocumentSizeFilter`: drops empty, tiny and huge documents, with a reason for each.
- `OfflineURLFilter`: datatrove's `URLFilter` without the public-suffix-list download, for web documents only.
- `LanguageIDFilter`: language identification with py3langid, whose model ships in the wheel.
- `QualityClassifierFilter`: applies a fastText model from `hfscratch curate train-classifier`.
- `PIIRedactor`: fixed placeholders for e-mails, public IPs, phones, payment cards, IBANs and secrets.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from operator import methodcaller

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    URLFilter,
)
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, ELLIPSIS, END_PUNCTUATION, POLICY_SUBSTRINGS
from datatrove.utils.text import PUNCTUATION_SET, split_into_sentences, split_into_words
from datatrove.utils.word_tokenizers import WordTokenizer

# -- Word tokenization for the heuristic filters ----------------------------------------------------------

_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


class RegexWordTokenizer(WordTokenizer):
    """Words and punctuation by regular expression; sentences at ., ! or ? followed by whitespace.

    The Gopher, C4 and FineWeb filters spend most of their time in spaCy's tokenizer (about 0.2 MB/s per
    core here); this one gives the same word boundaries for ordinary prose at several MB/s. Passed to a
    filter as its `language`, which datatrove accepts in place of a language code.
    """

    def __init__(self) -> None:
        super().__init__("en")

    # datatrove caches tokenized text per (text, tokenizer): equal instances let every filter share one entry.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, RegexWordTokenizer)

    def __hash__(self) -> int:
        return hash(RegexWordTokenizer)

    def word_tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [s for s in _SENTENCE_END.split(text) if s.strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        spans, start = [], 0
        for match in _SENTENCE_END.finditer(text):
            spans.append((start, match.start()))
            start = match.end()
        spans.append((start, len(text)))
        return spans


# -- Faster heuristic filters: datatrove's rules, fewer passes ---------------------------------------------
#
# Profiled on the default corpus (benchmarks/curation_throughput.py): Gopher repetition spent 60% of the
# chain's time building one joined string per word position for every n-gram size (9 passes over the words),
# Gopher quality looped over every word in Python, C4 recorded datatrove stats one line at a time. The
# subclasses below keep datatrove's rules, thresholds, check order, drop reasons and stats, and compute them
# with C-level passes (Counter, set, str.translate) and numpy. Paths that depend on how words are split use
# the fast route only with `RegexWordTokenizer`, whose words never contain whitespace; any other tokenizer
# (spaCy) runs datatrove's own `filter`. tests/curation/test_fast_filters.py checks every decision against
# the stock classes.


def count_duplicates(elements: list[str]) -> tuple[int, int]:
    """datatrove's `find_duplicates` (repeated elements and their characters, first occurrences excluded),
    by one set instead of a Python loop."""
    unique = set(elements)
    return len(elements) - len(unique), sum(map(len, elements)) - sum(map(len, unique))


# Polynomial hashing of substrings modulo 2**64 (wrapping uint64 arithmetic); the base is odd, so invertible.
_HASH_BASE = 0x9E3779B97F4A7C15
_HASH_BASE_INV = pow(_HASH_BASE, -1, 1 << 64)
_POWERS: dict[int, np.ndarray] = {}


def _powers(base: int, size: int) -> np.ndarray:
    """base**0 .. base**(size-1) modulo 2**64, grown by doubling and kept for the next document."""
    table = _POWERS.get(base)
    if table is None or table.size < size:
        table = np.full(max(size, 2 * (0 if table is None else table.size), 4096), base, dtype=np.uint64)
        table[0] = 1
        np.multiply.accumulate(table, out=table)
        _POWERS[base] = table
    return table[:size]


class WordNgrams:
    """The n-gram statistics of datatrove's `GopherRepetitionFilter` over one word list, in numpy.

    `top_chars(n)` is `find_top_duplicate(get_n_grams(words, n))`: n-grams joined by spaces, which for words
    without whitespace are equal exactly when their word sequences are, so each n-gram is an exact integer key
    (where its (n-1)-gram first occurs, combined with its last word's id). Counter's tie rule is kept: of the
    most frequent n-grams, the one that occurs first.

    `repeated_chars(n)` is `find_all_duplicate(words, n)`: n-grams joined without separator (so different
    splits of the same characters are the same n-gram, as in datatrove), each a substring of the words'
    concatenation. Every such substring gets a hash from prefix sums; a position whose hash no other position
    has (most positions: one pass of bucket counts finds them before any sort) cannot hold a repeat, so
    datatrove's greedy scan (a repeat skips the next n-1 positions) only visits the others and compares the
    real strings there: hash collisions cost time, never a different count.
    """

    def __init__(self, words: list[str]) -> None:
        self.n_words = len(words)
        first: dict[str, int] = {}  # a word's id: where it first occurs
        self.ids = np.fromiter(map(first.setdefault, words, range(self.n_words)), dtype=np.int64, count=self.n_words)
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=self.n_words)
        self.offsets = np.zeros(self.n_words + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.offsets[1:])
        self._first = {1: self.ids}  # n -> each position's n-gram, as the position where that n-gram first occurs
        self._words = words
        self._prefix: np.ndarray | None = None

    @staticmethod
    def _maybe_shared(hashes: np.ndarray) -> np.ndarray:
        """Positions whose hash may occur elsewhere, ascending: a superset found by counting hashes into
        buckets (their top bits, about 4 buckets a position), which takes one pass instead of a sort."""
        bits = max(8, hashes.size.bit_length() + 2)
        buckets = (hashes >> np.uint64(64 - bits)).astype(np.intp)
        return np.flatnonzero(np.bincount(buckets, minlength=1 << bits)[buckets] > 1)

    def top_chars(self, n: int) -> int | None:
        """Characters of the most frequent space-joined n-gram times its count; None with no n-gram."""
        if self.n_words < n:
            return None
        keys = self._first[n - 1][:-1] * self.n_words + self.ids[n - 1 :] if n > 1 else self.ids
        first = np.arange(keys.size, dtype=np.int64)  # an n-gram met once first occurs where it is
        top, position = 1, 0  # all n-grams distinct: Counter's first, the first n-gram
        maybe = self._maybe_shared(keys.astype(np.uint64) * np.uint64(_HASH_BASE))  # odd multiplier: mixes bits
        if maybe.size:
            # the n-grams there grouped exactly (stable: a group's first entry is its first occurrence)
            candidates = keys[maybe]
            order = np.argsort(candidates, kind="stable")
            ordered = candidates[order]
            starts_group = np.empty(ordered.size, dtype=bool)
            starts_group[0] = True
            np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
            starts = np.flatnonzero(starts_group)
            counts = np.diff(starts, append=ordered.size)
            group_first = maybe[order[starts]]
            first[maybe[order]] = np.repeat(group_first, counts)
            if counts.max() > 1:
                top = int(counts.max())
                position = int(group_first[counts == top].min())
        self._first[n] = first
        return (int(self.offsets[position + n] - self.offsets[position]) + n - 1) * top

    def _hashes(self, n: int) -> np.ndarray:
        if self._prefix is None:
            self.joined = "".join(self._words)
            self.offset_list = self.offsets.tolist()
            codes = np.frombuffer(self.joined.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.uint64)
            # prefix[k] = sum of codes[t] * base**-t for t < k; the hash of [s, e) is (prefix[e] - prefix[s]) * base**s
            self._prefix = np.zeros(codes.size + 1, dtype=np.uint64)
            np.cumsum(codes * _powers(_HASH_BASE_INV, codes.size), out=self._prefix[1:])
            self._scale = _powers(_HASH_BASE, codes.size + 1)
        start, end = self.offsets[: self.n_words + 1 - n], self.offsets[n:]
        return (self._prefix[end] - self._prefix[start]) * self._scale[start]

    def repeated_chars(self, n: int, text_length: int | None = None, fraction: float | None = None) -> int:
        """Characters in repeated n-grams, datatrove's greedy count. Given the filter's `text_length` and
        `fraction`, it may return an upper bound instead where the bound already passes the filter's test
        (`bound / text_length <= fraction`): the exact count passes it too, float division being monotone."""
        if self.n_words < n:
            return 0
        hashes = self._hashes(n)
        maybe = self._maybe_shared(hashes)
        if not maybe.size:
            return 0
        hashes = hashes[maybe]
        order = np.argsort(hashes)
        ordered = hashes[order]
        equal_next = ordered[1:] == ordered[:-1]
        if not equal_next.any():
            return 0
        shared_sorted = np.zeros(ordered.size, dtype=bool)
        shared_sorted[1:] = equal_next
        shared_sorted[:-1] |= equal_next
        shared = np.empty(ordered.size, dtype=bool)
        shared[order] = shared_sorted
        candidates = maybe[shared]  # positions whose hash another position has, in order
        if text_length is not None and fraction is not None:
            # counted repeats never overlap and all start at candidates: the union of the candidates' spans
            # bounds the count (starts and ends are both sorted, so the union is one vectorised pass)
            starts, ends = self.offsets[candidates], self.offsets[candidates + n]
            covered = int((ends - np.maximum(starts, np.concatenate(([0], ends[:-1])))).sum())
            if covered / text_length <= fraction:
                return covered
        joined, offsets = self.joined, self.offset_list
        seen: set[str] = set()
        repeated = next_position = 0
        for i in candidates.tolist():
            if i < next_position:  # inside a repeat datatrove already skipped over
                continue
            gram = joined[offsets[i] : offsets[i + n]]
            if gram in seen:
                repeated += len(gram)
                next_position = i + n
            else:
                seen.add(gram)
                next_position = i + 1
        return repeated


class FastGopherRepetitionFilter(GopherRepetitionFilter):
    """datatrove's `GopherRepetitionFilter`, same rules in the same order; n-gram repeats counted as above."""

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if not isinstance(self.language, RegexWordTokenizer):
            return super().filter(doc)
        text = doc.text
        if not text:
            return False, "empty"

        paragraphs = self.paragraph_exp.split(text.strip())
        paragraphs_duplicates, char_duplicates = count_duplicates(paragraphs)
        if self.dup_para_frac and paragraphs_duplicates / len(paragraphs) > self.dup_para_frac:
            return False, "dup_para_frac"
        if self.dup_para_char_frac and char_duplicates / len(text) > self.dup_para_char_frac:
            return False, "dup_para_char_frac"

        lines = self._line_splitter.split(text)
        line_duplicates, char_duplicates = count_duplicates(lines)
        if self.dup_line_frac and line_duplicates / len(lines) > self.dup_line_frac:
            return False, "dup_line_frac"
        if self.dup_line_char_frac and char_duplicates / len(text) > self.dup_line_char_frac:
            return False, "dup_line_char_frac"

        words = split_into_words(text, self.language)  # datatrove's cache: Gopher quality reuses it
        ngrams = WordNgrams(words)
        for n, n_frac in self.top_n_grams:
            top_char_length = ngrams.top_chars(n)
            if top_char_length is not None and top_char_length / len(text) > n_frac:
                return False, f"top_{n}_gram"

        for n, n_frac in self.dup_n_grams:
            if ngrams.repeated_chars(n, len(text), n_frac) / len(text) > n_frac:
                return False, f"duplicated_{n}_n_grams"
        return True


# Deleting datatrove's punctuation leaves something exactly when a word has a character outside it.
_DELETE_PUNCTUATION = str.maketrans("", "", "".join(PUNCTUATION_SET))
_STARTS_WITH_BULLET = methodcaller("startswith", ("•", "-"))
_ENDS_WITH_ELLIPSIS = methodcaller("endswith", ("...", "…"))


class FastGopherQualityFilter(GopherQualityFilter):
    """datatrove's `GopherQualityFilter`, same rules in the same order; per-word tests run once per distinct
    word (weighted by its count) instead of once per occurrence."""

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        words = split_into_words(text, self.language)
        n_words = len(words)
        counts = Counter(words)
        non_symbol = [(w, c) for w, c in counts.items() if w.translate(_DELETE_PUNCTUATION)]
        n_non_symbol_words = sum(c for _, c in non_symbol)

        if self.min_doc_words and n_non_symbol_words < self.min_doc_words:
            return False, "gopher_short_doc"
        if self.max_doc_words and n_non_symbol_words > self.max_doc_words:
            return False, "gopher_long_doc"

        # the same float as np.mean of the lengths: an exact integer sum, divided once
        avg_n_words = sum(len(w) * c for w, c in non_symbol) / n_non_symbol_words if non_symbol else np.nan
        if self.min_avg_word_length and avg_n_words < self.min_avg_word_length:
            return False, "gopher_below_avg_threshold"
        if self.max_avg_word_length and avg_n_words > self.max_avg_word_length:
            return False, "gopher_above_avg_threshold"

        if self.max_symbol_word_ratio and text.count("#") / n_words > self.max_symbol_word_ratio:
            return False, "gopher_too_many_hashes"
        if self.max_symbol_word_ratio and (text.count("...") + text.count("…")) / n_words > self.max_symbol_word_ratio:
            return False, "gopher_too_many_ellipsis"

        lines = text.splitlines()  # C-level maps over the lines, the same tests as datatrove's
        if (
            self.max_bullet_lines_ratio
            and sum(map(_STARTS_WITH_BULLET, map(str.lstrip, lines))) / len(lines) > self.max_bullet_lines_ratio
        ):
            return False, "gopher_too_many_bullets"
        if (
            self.max_ellipsis_lines_ratio
            and sum(map(_ENDS_WITH_ELLIPSIS, map(str.rstrip, lines))) / len(lines) > self.max_ellipsis_lines_ratio
        ):
            return False, "gopher_too_many_end_ellipsis"

        if (
            self.max_non_alpha_words_ratio
            and sum(c for w, c in counts.items() if w.isalpha() or any(map(str.isalpha, w))) / n_words
            < self.max_non_alpha_words_ratio
        ):
            return False, "gopher_below_alpha_threshold"

        if self.min_stop_words and len(self.stop_words.intersection(counts)) < self.min_stop_words:
            return False, "gopher_enough_stop_words"
        return True


_POLICY = re.compile("|".join(map(re.escape, POLICY_SUBSTRINGS)))


class FastC4QualityFilter(C4QualityFilter):
    """datatrove's `C4QualityFilter` (line by line, `split_paragraph=True`), same rules and the same line
    counters in its stats, added once per document instead of once per line. With `RegexWordTokenizer`, a
    line's sentences are counted by its sentence-end regex, and counting stops once there are enough."""

    def _count_lines(self, counts: dict[str, int]) -> None:
        # datatrove adds 1 per line: total and n grow by the count; min, max and mean stay 1, variance 0
        for key, n in counts.items():
            if n:
                metric = self.stats[key]
                if metric.n == 0:
                    metric.update(1)
                    n -= 1
                metric.total += n
                metric.n += n

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if not self.split_paragraph:
            return super().filter(doc)
        regex_sentences = isinstance(self.language, RegexWordTokenizer)
        counts = dict.fromkeys(
            (
                "line-total",
                "line-filter-too_long_word",
                "line-filter-no_terminal_punc",
                "line-filter-too_few_words",
                "line-filter-javascript",
                "line-filter-policy",
                "line-kept",
            ),
            0,
        )
        num_sentences = 0
        kept_lines = []
        try:
            for line in doc.text.splitlines():
                line = line.strip()
                words = line.split()
                counts["line-total"] += 1
                if (
                    self.max_word_length != -1
                    and words
                    and len(line) > self.max_word_length  # no word is longer than its line
                    and max(map(len, words)) > self.max_word_length
                ):
                    counts["line-filter-too_long_word"] += 1
                    continue
                if self.remove_citations and "[" in line:  # every citation pattern starts with [
                    line = CITATION_REGEX.sub("", line)
                if self.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
                    counts["line-filter-no_terminal_punc"] += 1
                    continue
                if len(words) < self.min_words_per_line:
                    counts["line-filter-too_few_words"] += 1
                    continue
                line_l = line.lower()
                if self.filter_lorem_ipsum and "lorem ipsum" in line_l:
                    return False, "lorem_ipsum"
                if self.filter_javascript and "javascript" in line_l:
                    counts["line-filter-javascript"] += 1
                    continue
                if self.filter_curly_bracket and "{" in line:
                    return False, "curly_bracket"
                if self.filter_policy and _POLICY.search(line_l):
                    counts["line-filter-policy"] += 1
                    continue
                if self.min_num_sentences != -1 and num_sentences < self.min_num_sentences:
                    if regex_sentences:  # RegexWordTokenizer.span_tokenize: one span per sentence end, plus one
                        num_sentences += len(_SENTENCE_END.findall(line)) + 1
                    else:
                        num_sentences += len(split_into_sentences(line, self.language))
                kept_lines.append(line)
                counts["line-kept"] += 1
        finally:
            self._count_lines(counts)
        if num_sentences < self.min_num_sentences:
            return False, "too_few_sentences"
        doc.text = "\n".join(kept_lines).strip()
        return True


class FastFineWebQualityFilter(FineWebQualityFilter):
    """datatrove's `FineWebQualityFilter`, same rules in the same order, with C-level passes over the lines."""

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        lines = [line for line in text.split("\n") if line.strip() != ""]
        if len(lines) == 0:
            return False, "empty"
        if all(len(c) == 1 for c in self.stop_chars):  # a non-empty line ends with one of them: its last char
            stop = set(self.stop_chars)
            ratio = sum(line[-1] in stop for line in lines) / len(lines)
        else:
            ratio = sum(1 for line in lines if line.endswith(self.stop_chars)) / len(lines)
        if ratio < self.line_punct_thr and not (ratio == 0 and self.line_punct_exclude_zero):
            return False, "line_punct_ratio"

        lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
        ratio = int((lengths <= self.short_line_length).sum()) / len(lines)
        if ratio > self.short_line_threshold:
            return False, "short_line_ratio"

        ratio = count_duplicates(lines)[1] / (len(text) - text.count("\n"))
        if ratio > self.char_duplicates_ratio:
            return False, "char_dup_ratio"

        new_line = text.count("\n")
        if isinstance(self.language, RegexWordTokenizer) and new_line / len(text.split()) <= self.new_line_ratio:
            # every whitespace-separated chunk holds at least one regex word, so the words are at least as
            # many as the chunks: a ratio that passes with the chunks passes with the words (the text has a
            # chunk: not all its lines are blank)
            return True
        words = split_into_words(text, self.language)
        if new_line / len(words) > self.new_line_ratio:
            return False, "list_ratio"
        return True


# -- Filters ----------------------------------------------------------------------------------------------


class DocumentSizeFilter(BaseFilter):
    """Drops documents shorter than `min_chars` (nothing to learn from) or longer than `max_chars`
    (usually a dump or a data file, and a memory hazard for the filters after it)."""

    name = "📏 Document size"

    def __init__(self, min_chars: int, max_chars: int) -> None:
        super().__init__()
        self.min_chars, self.max_chars = min_chars, max_chars

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if len(doc.text) < self.min_chars:
            return False, "too_short"
        if len(doc.text) > self.max_chars:
            return False, "too_long"
        return True


class OfflineURLFilter(URLFilter):
    """datatrove's URL blocklists (bundled with it), with the public suffix list from tldextract's own
    snapshot instead of a download. Documents without a URL (files, private docs) pass untouched."""

    name = "😈 URL filter (offline)"

    def __init__(self, **kwargs) -> None:
        from tldextract import TLDExtract

        super().__init__(**kwargs)
        self.tldextractor = TLDExtract(suffix_list_urls=())

    def filter(self, document: Document) -> bool | tuple[bool, str]:
        return super().filter(document) if document.metadata.get("url") else True


class LanguageIDFilter(BaseFilter):
    """Keeps documents whose language is one of `languages` with probability >= `threshold`.

    py3langid (a numpy port of langid.py) carries its model inside the wheel, so nothing is downloaded; the
    stock `LanguageFilter` fetches fastText's lid.176.bin at run time. The language and its probability go
    into the metadata either way, so later steps and the report can use them.
    """

    name = "🌍 Language ID (py3langid)"

    def __init__(self, languages: list[str], threshold: float = 0.65, max_chars: int = 1000, **kwargs) -> None:
        super().__init__(**kwargs)
        self.languages = set(languages)
        self.threshold = threshold
        self.max_chars = max_chars  # the first few thousand characters decide; long documents cost no more
        self._identifier = None

    @property
    def identifier(self):
        if self._identifier is None:  # loaded in the worker process, not pickled with the pipeline
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return self._identifier

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        language, probability = self.identifier.classify(doc.text[: self.max_chars])
        doc.metadata["language"], doc.metadata["language_score"] = language, round(float(probability), 4)
        if language not in self.languages:
            return False, "other_language"
        if probability < self.threshold:
            return False, "low_language_score"
        return True


def classifier_input(text: str) -> str:
    """fastText reads one line per example: the same normalisation at training and prediction time."""
    return " ".join(text.split())


class QualityClassifierFilter(BaseFilter):
    """Keeps documents that a fastText classifier scores as `__label__hq` with probability >= `threshold`.

    Our own block rather than datatrove's `FastTextClassifierFilter`, which in 0.10 caches a stale copy of a
    model retrained to the same path and crashes in annotate-only mode. The score goes into the metadata.
    """

    name = "🏅 Quality classifier (fastText)"
    LABEL = "__label__hq"

    def __init__(self, model_path: str, threshold: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model_path = model_path
        self.threshold = threshold
        self._model = None

    @property
    def model(self):
        if self._model is None:
            import fasttext

            self._model = fasttext.load_model(self.model_path)
        return self._model

    def score(self, text: str) -> float:
        labels, probabilities = self.model.predict(classifier_input(text), k=-1)
        return float(dict(zip(labels, probabilities)).get(self.LABEL, 0.0))

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        doc.metadata["quality_score"] = round(self.score(doc.text), 4)
        return doc.metadata["quality_score"] >= self.threshold or (False, "low_quality_score")


# -- Exact de-duplication ---------------------------------------------------------------------------------

_NOT_WORD = re.compile(r"[\W_]+")


def normalized_content(doc: Document) -> str:
    """What two documents must share to count as exact duplicates: their words, case and spacing aside."""
    return _NOT_WORD.sub(" ", doc.text.lower()).strip()


# -- PII redaction ----------------------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, and the result mod 97 is 1."""
    rearranged = candidate[4:] + candidate[:4]
    return 15 <= len(candidate) <= 34 and int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def card_valid(candidate: str) -> bool:
    """A payment card number: an issuer's prefix and length (Visa, Mastercard, Amex, Discover, JCB, Diners)
    and a valid Luhn check digit. Timestamps and long ids fail one or the other."""
    digits = re.sub(r"\D", "", candidate)
    n, prefix2, prefix4 = len(digits), int(digits[:2]), int(digits[:4])
    issuer = (
        (digits[0] == "4" and n in (13, 16, 19))
        or ((51 <= prefix2 <= 55 or 2221 <= prefix4 <= 2720) and n == 16)
        or (prefix2 in (34, 37) and n == 15)
        or ((digits.startswith("6011") or prefix2 == 65 or 644 <= int(digits[:3]) <= 649) and n == 16)
        or (3528 <= prefix4 <= 3589 and n == 16)
        or ((prefix2 in (36, 38) or 300 <= int(digits[:3]) <= 305) and n == 14)
    )
    return issuer and luhn_valid(digits)


def ip_valid(candidate: str) -> bool:
    """A publicly routable address, the only kind that can point at someone (datatrove's `PIIFormatter` policy,
    `ipaddress`'s `is_global`): private, reserved, loopback, link-local, documentation and multicast addresses
    (which `is_global` lets through) identify no one and are left. An IPv6 candidate needs at least three
    groups (reStructuredText's `::` parses as an address)."""
    try:
        ip = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    if not ip.is_global or ip.is_multicast:
        return False
    return ip.version == 4 or len([group for group in candidate.split(":") if group]) >= 3


def phone_valid(candidate: str) -> bool:
    return 9 <= sum(c.isdigit() for c in candidate) <= 15


# (kind, pattern, validator or None). Order matters: a private key block can contain anything, and a card
# or IBAN number must be claimed before the phone pattern sees its digits.
PII_PATTERNS: list[tuple[str, re.Pattern, Callable[[str], bool] | None]] = [
    (
        "private_key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[A-Za-z0-9+/=\s:,-]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----"
        ),
        None,
    ),
    (
        "secret",
        re.compile(
            r"\b(?:"
            r"(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
            r"|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}"  # GitHub
            r"|xox[abprs]-[A-Za-z0-9-]{10,72}"  # Slack
            r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
            r"|(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{24,99}"  # Stripe
            r"|sk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,}"  # OpenAI / Anthropic style
            r"|hf_[A-Za-z0-9]{34,}"  # Hugging Face
            r"|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"  # JSON web token
            r")\b"
        ),
        None,
    ),
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"), None),
    (
        "iban",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
        lambda s: iban_valid(s.replace(" ", "")),
    ),
    (
        "card",  # contiguous, or in groups of four (Amex: 4-6-5)
        re.compile(
            r"(?<![\d.-])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?|\d{4}[ -]\d{6}[ -]\d{4,5})(?![\d.-])"
        ),
        card_valid,
    ),
    (
        "phone",
        # +CC then groups (or 10+ digits), or a (3-digit area) code, or digits grouped by - or .
        re.compile(
            r"(?<![\w+.-])(?:"
            r"\+[1-9]\d{0,2}(?:[ -](?:\(\d{1,4}\)[ -]?)?\d{1,4}(?:[ -]\d{2,8}){1,4}|\d{10,14})"
            r"|\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}"
            r"|\d{2,4}[.-]\d{3,4}[.-]\d{3,4}"
            r")(?![\w.-]*\d)"
        ),
        phone_valid,
    ),
    (
        "ip",
        re.compile(r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?![\w.:])"),
        ip_valid,
    ),
]
PII_KINDS = [kind for kind, _, _ in PII_PATTERNS]


def redact(text: str, counts: dict[str, int] | None = None) -> str:
    """Replace every PII instance with a fixed placeholder such as `<EMAIL>`; tally kinds in `counts`."""
    for kind, pattern, valid in PII_PATTERNS:
        placeholder = f"<{kind.upper()}>"

        def replace(match: re.Match, kind=kind, valid=valid, placeholder=placeholder) -> str:
            if valid and not valid(match.group()):
                return match.group()
            if counts is not None:
                counts[kind] = counts.get(kind, 0) + 1
            return placeholder

        text = pattern.sub(replace, text)
    return text


class PIIRedactor(PipelineStep):
    """Redacts PII with fixed placeholders and counts each kind in the step's stats (`pii_email`, ...).

    Fixed placeholders (not the stock `PIIFormatter`'s rotating fake values) keep identical documents
    identical; de-duplication runs before this step anyway.
    """

    name = "🕵 PII redaction"
    type = "✂️ - FORMAT"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            counts: dict[str, int] = {}
            self.stat_update("input_chars", value=len(doc.text), unit="doc")  # the funnel's characters in
            with self.track_time():
                doc.text = redact(doc.text, counts)
            for kind, n in counts.items():
                self.stat_update(f"pii_{kind}", value=n)
            if counts:
                self.stat_update("documents_redacted")
            self.update_doc_stats(doc)
            yield doc
