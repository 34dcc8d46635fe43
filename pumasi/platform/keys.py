"""The OpenID Connect signing key: configured, or an RS256 key generated on first start and kept under var/.

Loaded from settings, so this module must not import Django models.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pumasi import config


def _generate_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def oidc_private_key() -> str:
    """PEM of the signing key. PUMASI_OIDC_PRIVATE_KEY (PEM text) or PUMASI_OIDC_PRIVATE_KEY_FILE win;
    otherwise var/oidc_rsa.pem, created once.

    The key is written to a temporary file and hard-linked into place, so two processes starting at
    the same moment cannot each keep a different key: the second link fails and it reads the first.
    """
    configured = os.environ.get("PUMASI_OIDC_PRIVATE_KEY")
    if configured:
        return configured
    path = Path(os.environ.get("PUMASI_OIDC_PRIVATE_KEY_FILE") or config.var_dir() / "oidc_rsa.pem")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".oidc-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_generate_pem())
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    return path.read_text()
