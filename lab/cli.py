"""What the scripts' command lines share: argparse types that state the valid range."""

import argparse


def bounded(kind, low, strict=False):
    """An argparse type: a `kind` (int or float) >= low, or > low if `strict`.

    A value outside says so in argparse's one-line error: "must be > 0, got -5".
    """
    relation = ">" if strict else ">="

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not (value > low if strict else value >= low):
            raise argparse.ArgumentTypeError(f"must be {relation} {low}, got {text}")
        return value

    parse.__name__ = f"{kind.__name__} {relation} {low}"
    return parse
