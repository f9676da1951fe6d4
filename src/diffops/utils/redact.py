"""Secrets out of what diffops records or prints.

`redact` masks the password of a URI's userinfo (`postgresql://u:***@host/db`) and the values of
password- or token-like query parameters (`?password=***`, `X-Amz-Signature=***`), in a URI or in any
text that holds URIs. It is the one function every writer of params, tags, specs, artifacts and
messages calls; the real URI is still the one used to connect.
"""
from __future__ import annotations

import re

MASK = "***"
# scheme://user:password@ — the password runs to the last '@' before the path, so a raw '@' in it is masked too
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^/\s]*)@")
_SECRET_QUERY = re.compile(r"(?P<key>[?&;][\w.\-]*(?:password|passwd|pwd|token|secret|signature|credential|"
                           r"api[_-]?key)=)(?P<value>[^&;#\s]*)", re.IGNORECASE)


def redact(text):
    """text with the secrets of the URIs in it replaced by ***; anything but a str is returned as it is."""
    if not isinstance(text, str):
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _SECRET_QUERY.sub(lambda m: m["key"] + MASK, text)


def redact_values(obj):
    """A copy of a JSON-like structure (dicts, lists, strings) with every string redacted."""
    if isinstance(obj, dict):
        return {k: redact_values(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_values(v) for v in obj)
    return redact(obj)
