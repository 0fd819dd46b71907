"""How to deliver it, part one: converters that rewrite a prompt (encodings, obfuscation, rephrasing).

The interface and registry are in `converter.py`; the built-ins in `obfuscation.py` and `rephrasing.py`.
"""

from safestack.redteam.converters.converter import (
    Converter,
    ConverterOptions,
    converter,
    converters,
)

__all__ = ["Converter", "ConverterOptions", "converter", "converters"]
