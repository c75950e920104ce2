"""PII redaction: every planted instance of every kind is replaced; clean technical text is left alone."""

import re

import pytest
from curation_corpora import read_output, write_jsonl

from hfscratch.curation.blocks import PII_KINDS, iban_valid, luhn_valid, redact

PLANTED = {
    "email": ["jane.doe@example.com", "j.smith+news@mail.example.co.uk", "ops_team@corp-mail.io"],
    "ip": ["8.8.8.8", "203.0.114.7", "2606:4700:4700::1111", "2001:4860:4860::8888"],  # publicly routable
    "phone": [
        "+1 415-555-0132",
        "(415) 555-0132",
        "415-555-0132",
        "+44 20 7946 0958",
        "+49 30 12345678",
        "212.555.0100",
    ],
    "card": ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005", "6011111111111117"],
    "iban": ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606"],
    "secret": [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
        "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
    "private_key": [
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
        "aFDrBz9vFqU4yX6W8lR2mVqJ8X7Z0qY1wL3v5Fz8nQ==\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "-----END OPENSSH PRIVATE KEY-----",
    ],
}


def planted_document(kind: str, value: str) -> str:
    return f"Please contact the owner about this ({value}) before Friday. It was noted on 2024-03-05 in release 3.11.7."


@pytest.mark.parametrize("kind, value", [(k, v) for k, values in PLANTED.items() for v in values])
def test_every_planted_instance_is_redacted(kind, value):
    counts = {}
    text = redact(planted_document(kind, value), counts)
    assert value not in text and f"<{kind.upper()}>" in text, text
    assert counts == {kind: 1}
    assert "2024-03-05" in text and "3.11.7" in text  # dates and versions are not PII


# Addresses that identify no one: left as they are (ipaddress's is_global is False, or multicast).
NOT_PUBLIC_IPS = {
    "private": ["192.168.1.23", "10.0.0.1", "172.16.5.4", "fd00::1"],
    "reserved": ["240.0.0.1", "255.255.255.255", "192.0.2.1", "2001:db8:85a3::8a2e:370:7334"],  # + documentation
    "loopback": ["127.0.0.1", "::1"],
    "link-local": ["169.254.1.1", "fe80::1ff:fe23:4567:890a"],
    "multicast": ["224.0.0.1", "239.255.255.250", "ff02::1:2"],
    "shared (carrier NAT)": ["100.64.0.1"],
}


@pytest.mark.parametrize("kind, value", [(k, v) for k, values in NOT_PUBLIC_IPS.items() for v in values])
def test_addresses_that_are_not_public_are_left(kind, value):
    text = planted_document("ip", value)
    counts = {}
    assert redact(text, counts) == text and counts == {}, kind


def test_validators():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    assert set(PLANTED) == set(PII_KINDS)


@pytest.mark.parametrize(
    "text",
    [
        "Version 1.2.3 was released; see PEP 8 and issue #12345.",
        "The tuple (1, 2, 3) and the range 0-255 are common; call f(10, 20).",
        "Dates like 2023-11-27 and times like 12:30:45 stay.",
        "A number such as 1234567890123 that fails the Luhn check stays.",
        "Hex digests like 3f2a9c0d1e4b and UUIDs 123e4567-e89b-12d3-a456-426614174000 stay.",
        "The slice a[1:2:3] and C++'s std::vector<int> stay.",
    ],
)
def test_clean_text_is_untouched(text):
    assert redact(text) == text


def test_clean_technical_text_alters_under_one_percent_of_tokens():
    """The standard library's reference text: numbers, versions, hex, code. Under 1% of tokens may change."""
    from pydoc_data.topics import topics

    before = "\n".join(topics.values())
    after = redact(before)
    altered = sum(
        len(set(b.split()) - set(a.split())) for b, a in zip(before.splitlines(), after.splitlines()) if a != b
    )
    assert altered / len(before.split()) < 0.01, altered


def test_pipeline_redacts_and_counts_each_kind(tmp_path, curate):
    records = [
        {"id": f"{kind}-{i}", "text": planted_document(kind, value)}
        for kind, values in PLANTED.items()
        for i, value in enumerate(values)
    ]
    path = write_jsonl(records, tmp_path / "pii.jsonl")
    out, stats = curate([{"type": "jsonl", "path": str(path)}], pii_redaction=True)
    texts = "\n".join(r["text"] for r in read_output(out))
    for values in PLANTED.values():
        for value in values:
            assert value not in texts
    assert stats["pii_redacted"] == {kind: len(values) for kind, values in PLANTED.items()}
    assert len(re.findall(r"<[A-Z_]+>", texts)) == sum(map(len, PLANTED.values()))
