"""The MLflow store as diffops connects to it.

connect_uri: MLflow gets an http(s) tracking URI without its `user:password@`; the credentials go to
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, which MLflow sends as basic auth. Left in the URI,
MLflow would print them ("View run ... at: http://user:password@...") and record them with the URI.
"""
from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit, urlunsplit


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def without_userinfo(uri: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def connect_uri(uri: str) -> str:
    """The URI to hand MLflow: an http(s) URI's credentials moved into MLflow's credential variables."""
    parts = urlsplit(uri)
    if not is_http(uri) or parts.username is None:
        return uri
    os.environ["MLFLOW_TRACKING_USERNAME"] = unquote(parts.username)
    if parts.password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = unquote(parts.password)
    return without_userinfo(uri)
