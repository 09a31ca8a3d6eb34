"""A data set stored as many Parquet files: a directory (as Spark, Dask or pyarrow write one,
hive-partitioned or not) or a glob.

Its shards are the files' row groups, in the order of the files' paths (relative to the
directory, compared as text) and then of the row groups in each file. Rows are numbered
across shards in that order, so a row's id does not depend on who reads it. Reading only
footers, opening learns every shard's rows: a shard can be read by anyone, alone.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from parityspec.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

GLOB_CHARACTERS = frozenset("*?[")
# Written beside the data by Spark and Hadoop (_SUCCESS, _metadata) or editors: not rows.
_SKIPPED_PREFIXES = ("_", ".")


def is_sharded(spec_dir: Path, path: str) -> bool:
    """Whether `data.path` names many files: a glob, or a directory."""
    return bool(GLOB_CHARACTERS & set(path)) or (spec_dir / path).is_dir()


@dataclass(frozen=True)
class Shard:
    file: Path
    row_group: int
    first_row: int
    """The global id of the shard's first row."""
    rows: int

    @property
    def name(self) -> str:
        return f"{self.file.name} row group {self.row_group}"


class ParquetShards:
    """The shards of a Parquet data set, their rows and their common schema."""

    def __init__(self, root: Path, files: list[Path], shown: str, shown_root: str):
        """`files`: under the directory `root`, in order; `shown`: `data.path` as the spec
        wrote it and `shown_root` its directory, for messages."""
        self.root, self.shown, self.shown_root = root, shown, shown_root
        self.files = files
        self.partitions = {f: _partition_values(root, f) for f in self.files}
        self.schema, self.shards = self._read_footers()

    def shown_file(self, file: Path) -> str:
        """A shard's file as the user knows it: under the directory data.path names."""
        return (Path(self.shown_root) / file.relative_to(self.root)).as_posix()

    def __len__(self) -> int:
        return sum(s.rows for s in self.shards)

    def tables(self, size: int, rows: int | None = None) -> Iterator[tuple[int, pa.Table]]:
        """Every shard's rows in tables of at most `size` rows, none straddling two shards,
        each with its shard's number; at most `rows` rows in all."""
        left = rows
        for number, shard in enumerate(self.shards):
            for table in self.read(shard, size):
                if left is not None:
                    table = table.slice(0, left)
                    left -= table.num_rows
                yield number, table
                if left is not None and left <= 0:
                    return

    def first_row_in_file(self, shard: Shard) -> int:
        """Where the shard starts in its own file."""
        earlier = (s for s in self.shards if s.file == shard.file and s.row_group < shard.row_group)
        return sum(s.rows for s in earlier)

    def read(self, shard: Shard, size: int, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """One shard's rows in tables of `size` rows (the last shorter), with its partition
        columns; of the file's columns, `columns` only (all when None)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        partitions = self.partitions[shard.file]
        # Asked for partition columns only: the file's all, which carry the rows' count.
        in_file = None if columns is None else [c for c in columns if c not in partitions]
        try:
            source = pq.ParquetFile(shard.file)
            blocks = source.iter_batches(
                batch_size=size, row_groups=[shard.row_group], columns=in_file or None
            )
            for block in blocks:
                yield _with_partitions(pa.Table.from_batches([block]), partitions)
        except InputError:
            raise
        except Exception as error:  # pyarrow raises many types for a bad file
            raise InputError(
                f"cannot read PARQUET shard {shard.name}: {_first_line(error)}",
                file=self.shown_file(shard.file),
            ) from error

    def _read_footers(self) -> tuple[pa.Schema, list[Shard]]:
        import pyarrow.parquet as pq

        schema: pa.Schema | None = None
        keys: list[str] = []
        shards: list[Shard] = []
        first_row = 0
        for file in self.files:
            try:
                metadata = pq.read_metadata(file)
                file_schema = metadata.schema.to_arrow_schema()
            except Exception as error:  # not a Parquet file, or a damaged one
                raise InputError(
                    f"cannot read PARQUET: {_first_line(error)}", file=self.shown_file(file)
                ) from error
            file_keys = sorted(self.partitions[file])
            if schema is None:
                schema, keys = file_schema, file_keys
            elif not file_schema.equals(schema) or file_keys != keys:
                difference = _schema_difference(schema, file_schema, keys, file_keys)
                raise InputError(
                    f"another schema than {self.shown_file(self.files[0])}: {difference}",
                    file=self.shown_file(file),
                    hint="every shard needs the same columns with the same types",
                )
            for group in range(metadata.num_row_groups):
                rows = metadata.row_group(group).num_rows
                if rows:
                    shards.append(Shard(file, group, first_row, rows))
                    first_row += rows
        if schema is None or not shards:
            raise InputError("the data has no rows", file=self.shown)
        return schema, shards

    def fingerprint(self) -> str:
        return sharded_sha256(self.root, self.files)


def open_shards(spec_dir: Path, path: str) -> ParquetShards:
    """The shards `data.path` names (relative to the spec's folder)."""
    if GLOB_CHARACTERS & set(path):
        root, pattern = _glob_root(spec_dir, path)
        files = _find_files(root, pattern, path)
        return ParquetShards(root, files, path, str(root.relative_to(spec_dir)))
    root = spec_dir / path
    if not root.is_dir():
        raise InputError(
            "no such directory" if not root.exists() else "not a directory",
            file=path,
            hint="a data.path ending in / names a directory of Parquet files",
        )
    return ParquetShards(root, _find_files(root, None, path), path, path.rstrip("/") or ".")


def file_shards(file: Path, shown: str) -> ParquetShards:
    """One Parquet file's row groups."""
    return ParquetShards(file.parent, [file], shown, str(Path(shown).parent))


def shards_sha256(spec_dir: Path, path: str) -> str | None:
    """The digest of the files a sharded `data.path` names now (see `sharded_sha256`), for
    cache keys; None when it names none. Reads no footer."""
    if GLOB_CHARACTERS & set(path):
        root, pattern = _glob_root(spec_dir, path)
    else:
        root, pattern = spec_dir / path, None
    try:
        return sharded_sha256(root, _find_files(root, pattern, path))
    except InputError:
        return None


def sharded_sha256(root: Path, files: list[Path]) -> str:
    """A digest of the file names and contents: renaming, adding or changing a shard
    changes it."""
    from parityspec.loading import file_sha256

    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(file_sha256(file).encode() + b"\n")
    return digest.hexdigest()


def _glob_root(spec_dir: Path, path: str) -> tuple[Path, str]:
    """The longest leading folder of a glob without glob characters, and the rest."""
    parts = Path(path).parts
    fixed = 0
    while fixed < len(parts) - 1 and not GLOB_CHARACTERS & set(parts[fixed]):
        fixed += 1
    root = spec_dir.joinpath(*parts[:fixed])
    return root, str(Path(*parts[fixed:]))


def _find_files(root: Path, pattern: str | None, shown: str) -> list[Path]:
    if pattern is None:
        found = [
            Path(folder) / name
            for folder, folders, names in os.walk(root)
            for name in names
            if name.endswith(".parquet") or name.endswith(".parq")
        ]
        where = "the directory has no .parquet files"
    else:
        found = [Path(p) for p in glob.glob(str(root / pattern), recursive=True)]
        where = "the glob matches no file"
    files = sorted(
        (f for f in found if f.is_file() and not _skipped(root, f)),
        key=lambda f: f.relative_to(root).as_posix(),
    )
    if not files:
        raise InputError(where, file=shown, hint="data.path names Parquet files of the rows")
    return files


def _skipped(root: Path, file: Path) -> bool:
    return any(part.startswith(_SKIPPED_PREFIXES) for part in file.relative_to(root).parts)


def _partition_values(root: Path, file: Path) -> dict[str, str]:
    """Hive partition folders (`country=fr/`) between the root and the file."""
    values = {}
    for part in file.relative_to(root).parts[:-1]:
        key, equals, value = part.partition("=")
        if equals and key:
            values[key] = value
    return values


def _schema_difference(
    first: pa.Schema, other: pa.Schema, first_keys: list[str], other_keys: list[str]
) -> str:
    types = {f.name: f.type for f in first}
    other_types = {f.name: f.type for f in other}
    parts = []
    if missing := [n for n in types if n not in other_types]:
        parts.append(f"lacks {', '.join(missing)}")
    if extra := [n for n in other_types if n not in types]:
        parts.append(f"adds {', '.join(extra)}")
    changed = [
        f"{n} is {other_types[n]} (not {t})"
        for n, t in types.items()
        if n in other_types and other_types[n] != t
    ]
    parts += changed
    if first_keys != other_keys:
        parts.append(f"partitions {other_keys or 'none'} (not {first_keys or 'none'})")
    if not parts:  # same names and types, another order
        parts.append(f"columns in another order: {', '.join(other.names)}")
    return "; ".join(parts)


def _with_partitions(table: pa.Table, values: dict[str, str]) -> pa.Table:
    import pyarrow as pa

    for key, value in sorted(values.items()):
        if key not in table.column_names:
            table = table.append_column(key, pa.array([value] * table.num_rows, pa.string()))
    return table


def _first_line(error: BaseException) -> str:
    return (str(error).strip() or type(error).__name__).splitlines()[0]
