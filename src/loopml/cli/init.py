"""``loopml init NAME``: a project folder with a pipeline that works on real data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from loopml.errors import InvalidParameterError

TEMPLATE_FILES = {
    "loopml.toml": "loopml.toml",
    "pipelines.py": "pipelines.py",
    "gitignore": ".gitignore",
    "README.md": "README.md",
}


@click.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Write into an existing, non-empty folder.")
def init(name: str, force: bool) -> None:
    """Create project NAME: loopml.toml and pipelines.py with a `train` pipeline.

    The example trains a scikit-learn regressor on the diabetes data set that ships
    with scikit-learn (no download) and logs RMSE, MAE and R².

    \b
    Example:
      loopml init churn && cd churn && loopml run train -p alpha=0.5
    """
    if not name or "/" in name or name in (".", "..") or name.startswith("-"):
        raise InvalidParameterError(
            f"Project name {name!r}: expected a folder name such as 'churn'."
        )
    target = Path(name)
    if target.exists() and any(target.iterdir()) and not force:
        raise InvalidParameterError(
            f"Folder {str(target)!r} exists and is not empty; pick another name or pass --force."
        )
    target.mkdir(parents=True, exist_ok=True)
    package = resources.files("loopml.cli") / "templates"
    for source, dest in TEMPLATE_FILES.items():
        text = (package / source).read_text(encoding="utf-8").replace("{{name}}", name)
        (target / dest).write_text(text, encoding="utf-8")
    click.echo(f"Created project {name!r} in {target.resolve()}")
    click.echo(f"Next:  cd {name} && loopml run train -p alpha=0.5 && loopml runs")
