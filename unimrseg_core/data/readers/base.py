"""What every dataset reader shares: split resolution, folder discovery, pairing by
file stem, header checks and the raise-or-skip policy for bad scenes.

When a reader opens it lists and pairs every scene and reads each file's HEADER
(not its pixels): a missing partner file, a duplicate stem, a split-list name with
no file, an unreadable header or sizes that differ between modalities of a scene
are found here. With ``on_error="raise"`` the first one raises a DatasetError
naming the file; with ``on_error="skip"`` the scene is left out, logged as a
warning and recorded in ``reader.skipped`` as ``(path, reason)``. Problems with the
dataset as a whole (no root, empty root, a required folder missing, a split that
does not exist, a bad config or class map) always raise.

Pixels are decoded lazily in ``reader[i]``. A file that is damaged behind a valid
header, or a label with values outside the class map, is only found then and
always raises DatasetError naming the file (in both modes: the index is already
fixed, and a silently different sample would misalign the dataset).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, overload

import numpy as np

from unimrseg_core.data.readers.classmap import ClassMap, load_classmap
from unimrseg_core.data.readers.errors import DatasetError
from unimrseg_core.data.readers.images import IMAGE_SUFFIXES, ImageHeader, read_header
from unimrseg_core.data.readers.options import DatasetOptions, DepthOptions, ThermalOptions, load_options
from unimrseg_core.data.sample import Sample
from unimrseg_core.modalities import CLASSES, ClassInfo

__all__ = ["ON_ERROR", "DatasetReader", "Role", "SceneFiles"]

_log = logging.getLogger(__name__)

ON_ERROR: Final[tuple[str, ...]] = ("raise", "skip")


@dataclass(frozen=True)
class Role:
    """One folder of a layout: its key in ``meta["files"]`` and the folder names it may have.

    ``folders`` are lower-case and in order of preference (matched case-insensitively);
    a required role's folder must exist, an optional one (ground truth) may be absent,
    but when it exists every scene needs its file. ``truth`` names the Sample field a
    ground-truth role fills (``saliency`` or ``label``).
    """

    key: str
    folders: tuple[str, ...]
    required: bool = True
    truth: str | None = None


@dataclass(frozen=True)
class SceneFiles:
    """One scene found on disk: its stem and a file (with its header) per role."""

    name: str
    files: Mapping[str, Path]
    headers: Mapping[str, ImageHeader]


def _natural_key(name: str) -> tuple[Any, ...]:
    """Sort ``2`` before ``10`` (dataset file names are mostly numbers)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


class DatasetReader(Sequence[Sample]):
    """An indexable, lazily decoded view of one dataset split; yields validated Samples.

    Subclasses set ``KIND``, ``ROLES`` (the first is the anchor that defines the
    scenes), ``OPTION_SECTIONS`` and implement :meth:`_load`.
    """

    KIND: ClassVar[str]
    ROLES: ClassVar[tuple[Role, ...]]
    OPTION_SECTIONS: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        root: str | Path,
        *,
        split: str | None = None,
        config: str | Path | Mapping[str, Any] | None = None,
        on_error: str = "raise",
        classes: Sequence[ClassInfo] = CLASSES,
    ) -> None:
        """``classes``: the class table the class map's targets name (ours unless a model is
        fine-tuned on another)."""
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
        self.root = Path(root)
        self.split = split
        self.on_error = on_error
        self.skipped: list[tuple[str, str]] = []
        self.ignored: list[tuple[str, str]] = []  # (path, why) of non-image files in role folders
        self._ignored_stems: dict[str, dict[str, Path]] = {}  # role key -> stem -> ignored file
        self._ambiguous: set[str] = set()  # stems with several files in one folder
        self.options: DatasetOptions = load_options(self.KIND, self.OPTION_SECTIONS, config)
        missing = [name for name in self.OPTION_SECTIONS if getattr(self.options, name) is None]
        if missing:
            raise DatasetError(
                self.options.sources[-1], f"{self.KIND}: missing option section {missing[0]!r}"
            )
        self.classmap: ClassMap | None = (
            load_classmap(self.options.classmap, classes) if self.options.classmap else None
        )

        if not self.root.is_dir():
            raise DatasetError(self.root, "dataset root does not exist or is not a folder")
        if not any(p for p in self.root.iterdir() if not p.name.startswith(".")):
            raise DatasetError(self.root, "dataset root is empty")
        self.data_root, names, list_file = self._resolve_split()
        self.folders: dict[str, Path] = self._find_folders()
        self.absent: dict[str, str] = {
            role.key: (
                f"no {role.key} folder in {self.data_root} (looked for "
                f"{', '.join(f + '/' for f in role.folders)} in any case)"
            )
            for role in self.ROLES
            if role.key not in self.folders
        }  # optional roles (ground truth) this dataset lacks, with where they were looked for
        listings = {key: self._list_folder(key, folder) for key, folder in self.folders.items()}
        candidates = self._pair(listings, names, list_file)
        checked = (self._check_scene(files) for files in candidates)
        self.scenes: list[SceneFiles] = [scene for scene in checked if scene is not None]
        if not self.scenes:
            details = [
                f"{len(found)} {what}; first: {found[0][0]}: {found[0][1]}"
                for what, found in (("skipped", self.skipped), ("ignored", self.ignored))
                if found
            ]
            detail = f" ({'; '.join(details)})" if details else ""
            raise DatasetError(list_file or self.data_root, f"no usable samples{detail}")

    # ------------------------------------------------------------------ sequence

    def __len__(self) -> int:
        return len(self.scenes)

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        scene = self.scenes[index]  # IndexError past the end, as Sequence expects
        sample = self._load(scene)
        sample.meta = {
            "name": scene.name,
            "dataset": self.KIND,
            "split": self.split,
            "files": {k: str(p) for k, p in scene.files.items()},
            **sample.meta,
        }
        try:
            return sample.validate()
        except ValueError as e:
            anchor = scene.files[self.ROLES[0].key]
            raise DatasetError(anchor, f"decoded sample breaks the Sample contract: {e}") from e

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        split = f", split={self.split!r}" if self.split else ""
        counts = f"{len(self)} samples, {len(self.skipped)} skipped"
        return f"{type(self).__name__}({str(self.root)!r}{split}: {counts})"

    def missing_truth(self) -> dict[str, str]:
        """Why this dataset's samples lack each kind of ground truth (``label``, ``saliency``).

        A kind the layout never has says so; one whose folder is absent names the folders
        looked for. Kinds the samples do have are not listed.
        """
        reasons = {}
        for field in ("label", "saliency"):
            role = next((r for r in self.ROLES if r.truth == field), None)
            if role is None:
                reasons[field] = f"the {self.KIND} layout has no {field} ground truth"
            elif role.key in self.absent:
                reasons[field] = self.absent[role.key]
        return reasons

    # ------------------------------------------------------------- subclass hooks

    def _load(self, scene: SceneFiles) -> Sample:
        """Decode one scene into a Sample (meta is filled in by ``__getitem__``)."""
        raise NotImplementedError

    @property
    def depth_options(self) -> DepthOptions:
        if self.options.depth is None:
            raise DatasetError(self.options.sources[-1], f"{self.KIND}: no depth options")
        return self.options.depth

    @property
    def thermal_options(self) -> ThermalOptions:
        if self.options.thermal is None:
            raise DatasetError(self.options.sources[-1], f"{self.KIND}: no thermal options")
        return self.options.thermal

    def _map_labels(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Raw label values -> our class ids through this dataset's class map."""
        if self.classmap is None:
            raise DatasetError(self.options.sources[-1], f"{self.KIND}: no classmap option")
        return self.classmap.apply(raw, path)

    def _check_header(self, key: str, header: ImageHeader) -> str | None:
        """Why a file of role ``key`` cannot be used, judged from its header; None if fine."""
        del key, header
        return None

    # ------------------------------------------------------------------ discovery

    def _problem(self, path: Path, reason: str) -> None:
        """A bad scene: raise, or record and skip it (see the module docstring)."""
        if self.on_error == "raise":
            raise DatasetError(path, reason)
        _log.warning("%s: %s (skipped)", path, reason)
        self.skipped.append((str(path), reason))

    def _resolve_split(self) -> tuple[Path, list[tuple[int, str]] | None, Path | None]:
        """(data root, names from a split list with their line numbers, the list file).

        A split is a sub-root named like it (any case: VT5000's ``Train/``) or a
        ``<split>.txt`` list of names in the root (MFNet, NYUDv2).
        """
        if self.split is None:
            return self.root, None, None
        if not self.split or "/" in self.split or "\\" in self.split:
            raise DatasetError(self.root, f"invalid split name {self.split!r}")
        subdirs = [p for p in self.root.iterdir() if p.is_dir() and p.name.lower() == self.split.lower()]
        if len(subdirs) > 1:
            raise DatasetError(
                self.root, f"ambiguous split {self.split!r}: {', '.join(p.name for p in subdirs)}"
            )
        if subdirs:
            return subdirs[0], None, None
        list_file = self.root / f"{self.split}.txt"
        if not list_file.is_file():
            lists = sorted(p.stem for p in self.root.glob("*.txt"))
            dirs = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise DatasetError(
                self.root,
                f"split {self.split!r} not found: no folder {self.split}/ and no "
                f"{self.split}.txt (lists: {lists or 'none'}; folders: {dirs or 'none'})",
            )
        return self.root, self._read_list(list_file), list_file

    @staticmethod
    def _read_list(list_file: Path) -> list[tuple[int, str]]:
        """Names of a split list: one per line; extra columns, folders and suffixes are dropped."""
        try:
            lines = list_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(list_file, f"cannot read split list: {e}") from e
        names = []
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            token = Path(text.split()[0].replace("\\", "/"))
            names.append((number, token.stem if token.suffix.lower() in IMAGE_SUFFIXES else token.name))
        if not names:
            raise DatasetError(list_file, "split list is empty")
        return names

    def _find_folders(self) -> dict[str, Path]:
        """The folder of each role under the data root (required ones must exist)."""
        children = sorted(p for p in self.data_root.iterdir() if p.is_dir())
        found: dict[str, Path] = {}
        for role in self.ROLES:
            for name in role.folders:
                matches = [p for p in children if p.name.lower() == name]
                if len(matches) > 1:
                    raise DatasetError(
                        self.data_root, f"ambiguous {role.key} folder: {', '.join(p.name for p in matches)}"
                    )
                if matches:
                    found[role.key] = matches[0]
                    others = [p.name for p in children if p.name.lower() in role.folders and p != matches[0]]
                    if others:
                        _log.info(
                            "%s: using %s/ for %s, ignoring %s",
                            self.data_root,
                            matches[0].name,
                            role.key,
                            ", ".join(others),
                        )
                    break
            else:
                if role.required:
                    hint = f"; found: {', '.join(p.name for p in children) or 'no folders'}"
                    if self.split is None and children and not found:
                        hint += " (if these are splits, pass split=...)"
                    raise DatasetError(
                        self.data_root,
                        f"no {role.key} folder (expected one of: {', '.join(role.folders)}, any case){hint}",
                    )
        return found

    def _list_folder(self, key: str, folder: Path) -> dict[str, Path]:
        """Image files of a folder by stem; two files with one stem are a problem, never a guess.

        Other files are listed in ``ignored`` with the reason, never dropped silently.
        """
        by_stem: dict[str, list[Path]] = {}
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                by_stem.setdefault(path.stem, []).append(path)
            else:
                why = (
                    f"suffix {path.suffix or '(none)'!r} is not an image format the readers read "
                    f"({', '.join(sorted(IMAGE_SUFFIXES))})"
                )
                self.ignored.append((str(path), why))
                self._ignored_stems.setdefault(key, {})[path.stem] = path
        ignored = self._ignored_stems.get(key, {})
        if ignored:
            suffixes = sorted({p.suffix or "(none)" for p in ignored.values()})
            _log.warning("%s: %d files ignored (suffixes %s)", folder, len(ignored), ", ".join(suffixes))
        listing: dict[str, Path] = {}
        for stem, paths in by_stem.items():
            if len(paths) > 1:
                self._problem(
                    paths[0], f"several files with stem {stem!r}: {', '.join(p.name for p in paths)}"
                )
                self._ambiguous.add(stem)
            else:
                listing[stem] = paths[0]
        return listing

    def _pair(
        self,
        listings: dict[str, dict[str, Path]],
        names: list[tuple[int, str]] | None,
        list_file: Path | None,
    ) -> list[dict[str, Path]]:
        """Files of each scene, paired by stem; a scene lacking a partner file is a problem."""
        anchor = self.ROLES[0].key
        if names is None:
            stems = sorted({s for listing in listings.values() for s in listing}, key=_natural_key)
        else:
            stems, seen = [], set()
            for number, name in names:
                if name in seen:
                    self._problem(list_file or self.data_root, f"line {number}: {name!r} is listed twice")
                    continue
                seen.add(name)
                if name not in listings[anchor] and name not in self._ambiguous:
                    self._problem(
                        list_file or self.data_root,
                        f"line {number}: {name!r} has no {anchor} file in {self.folders[anchor]}",
                    )
                    continue
                stems.append(name)
        scenes = []
        for stem in stems:
            if stem in self._ambiguous:
                continue
            files = {key: listing[stem] for key, listing in listings.items() if stem in listing}
            missing = [key for key in listings if key not in files]
            if missing:
                have = next(iter(files.values()))
                skipped_file = self._ignored_stems.get(missing[0], {}).get(stem)
                hint = f" ({skipped_file.name} is there, but its suffix is not read)" if skipped_file else ""
                self._problem(
                    have,
                    f"missing partner: no {missing[0]} file {self.folders[missing[0]]}/{stem}.* "
                    f"for this {next(iter(files))} file{hint}",
                )
                continue
            scenes.append(files)
        return scenes

    def _check_scene(self, files: dict[str, Path]) -> SceneFiles | None:
        """Read every file's header: readable, usable for its role, one size per scene."""
        headers: dict[str, ImageHeader] = {}
        for key, path in files.items():
            try:
                header = read_header(path)
            except DatasetError as e:
                self._problem(path, e.reason)
                return None
            reason = self._check_header(key, header)
            if reason:
                self._problem(path, reason)
                return None
            headers[key] = header
        anchor = self.ROLES[0].key
        size = headers[anchor].size
        for key, header in headers.items():
            if header.size != size:
                self._problem(
                    files[key],
                    f"size {header.width}x{header.height} differs from the {anchor} file "
                    f"{files[anchor].name} ({size[1]}x{size[0]})",
                )
                return None
        return SceneFiles(name=files[anchor].stem, files=files, headers=headers)
