"""``watcher browse``: the database in Datasette, titled and described for editors.

Datasette is an optional extra (``pip install 'watcher[browse]'``). Its
metadata (titles and descriptions of tables, views and columns, and queries
that read compressed texts) ships with watcher as ``datasette_metadata.yaml``
and is filed under the database's own name, which Datasette takes from the
file name.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .config import Config
from .errors import UsageError
from .store import Store

#: The database name the packaged metadata is written for.
_METADATA_DATABASE = "watcher"


def datasette_metadata(db_path: str | Path) -> dict[str, Any]:
    """The packaged metadata, with its database section named after ``db_path`` as Datasette names it."""
    text = resources.files("watcher").joinpath("datasette_metadata.yaml").read_text(encoding="utf-8")
    metadata = yaml.safe_load(text)
    databases = metadata["databases"]
    databases[Path(db_path).stem] = databases.pop(_METADATA_DATABASE)
    return metadata


def browse(config: Config, store: Store, host: str = "127.0.0.1", port: int = 8001, open_browser: bool = False) -> None:
    """Mirror the configuration into the database, then serve it with Datasette until interrupted."""
    if importlib.util.find_spec("datasette") is None:
        raise UsageError("watcher browse needs Datasette: pip install 'watcher[browse]'")
    from datasette.cli import cli as datasette_cli

    # The record_status view answers from the database alone: bring it up to date with the config.
    store.sync_config(config)
    with tempfile.TemporaryDirectory(prefix="watcher-browse-") as folder:
        metadata_path = Path(folder) / "metadata.json"
        metadata_path.write_text(json.dumps(datasette_metadata(store.path), indent=2), encoding="utf-8")
        arguments = ["serve", store.path, "--metadata", str(metadata_path), "--host", host, "--port", str(port)]
        if open_browser:
            arguments.append("--open")
        # In this process, so that an interrupt stops Datasette and the metadata file goes with it.
        datasette_cli.main(arguments, prog_name="datasette", standalone_mode=False)
