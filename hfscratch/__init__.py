"""hfscratch: plan, curate, tokenize, pretrain, evaluate and hand off a language model trained from scratch."""

from importlib.metadata import version

__version__ = version("hfscratch")
