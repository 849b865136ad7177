"""What the package trusts on disk, and the checks behind it (RELIABILITY.md, "Untrusted files").

- A path that comes from outside (a ROS parameter, which any DDS peer can set) must lie
  inside the directory it was configured for: :func:`confined` resolves ``..`` and
  symbolic links before comparing, so neither can escape.
- An engine (TensorRT plan, AOTInductor package) is code: whoever can write the cache
  can run code in the node. The sha256 sidecar catches damage, not malice, because an
  attacker can write a matching sidecar. So engines are read only from a cache directory
  that only this user can write (:func:`check_private_dir`, the rule ssh applies to
  ``~/.ssh``), and the cache is created that way.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["UntrustedPathError", "check_private_dir", "check_private_file", "confined", "make_private_dir"]


class UntrustedPathError(ValueError):
    """A path the package refuses to read: outside its configured directory, or writable by others."""


def confined(path: str | Path, root: str | Path, *, what: str = "path") -> Path:
    """``path`` (relative paths are taken in ``root``) resolved, if it lies inside ``root``.

    Symbolic links and ``..`` are resolved first on both sides, so ``root/../x`` and a
    link in ``root`` pointing out of it are refused. The file need not exist yet (the
    caller reports a missing file with its own message).
    """
    base = Path(root).expanduser().resolve()
    target = (base / Path(path).expanduser()).resolve()
    if not target.is_relative_to(base):
        raise UntrustedPathError(f"{what} {str(path)!r} resolves to {target}, outside {base}")
    return target


def _owned_and_unwritable(path: Path, info: os.stat_result, *, sticky_ok: bool) -> None:
    uid = os.geteuid()
    if info.st_uid not in (uid, 0):
        raise UntrustedPathError(f"{path} is owned by uid {info.st_uid}, not this user ({uid}) or root")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (sticky_ok and info.st_mode & stat.S_ISVTX):
        raise UntrustedPathError(
            f"{path} is writable by other users (mode {stat.filemode(info.st_mode)}); run: chmod go-w {path}"
        )


def check_private_dir(path: str | Path) -> None:
    """Refuse a directory that another user could write into, or whose parents let them replace it.

    The directory must be owned by this user (or root) and not group- or world-writable.
    Its existing parents must be too, except sticky ones such as /tmp, where others
    cannot rename or delete our entries. A missing directory passes:
    :func:`make_private_dir` creates it.
    """
    target = Path(path).expanduser().resolve()
    if target.exists():
        _owned_and_unwritable(target, target.stat(), sticky_ok=False)
    for parent in target.parents:
        if parent.exists():
            _owned_and_unwritable(parent, parent.stat(), sticky_ok=True)


def check_private_file(path: str | Path) -> None:
    """Refuse a file another user owns or may write (an engine about to be loaded as code)."""
    target = Path(path)
    if target.is_symlink():
        raise UntrustedPathError(f"{target} is a symbolic link; engines are read only as plain files")
    _owned_and_unwritable(target, target.stat(), sticky_ok=False)


def make_private_dir(path: str | Path) -> Path:
    """Create ``path`` (mode 0700) if missing, then :func:`check_private_dir` it."""
    target = Path(path).expanduser()
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_private_dir(target)
    return target
