"""Our own datatrove blocks, for what the stock ones cannot do offline or do not do at all.

- `RegexWordTokenizer`: a word tokenizer for datatrove's heuristic filters, 7x faster than spaCy.
- `DocumentSizeFilter`: drops empty, tiny and huge documents, with a reason for each.
- `OfflineURLFilter`: datatrove's `URLFilter` without the public-suffix-list download, for web documents only.
- `LanguageIDFilter`: language identification with py3langid, whose model ships in the wheel.
- `QualityClassifierFilter`: applies a fastText model from `hfscratch curate train-classifier`.
- `PIIRedactor`: fixed placeholders for e-mails, public IPs, phones, payment cards, IBANs and secrets.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters import URLFilter
from datatrove.pipeline.filters.base_filter import BaseFilter
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
